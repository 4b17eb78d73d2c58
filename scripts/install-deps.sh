#!/usr/bin/env bash
# The system packages `make test`, `make bench`, `make dist` and `make dist-check` need (the Makefile's system-deps step).
#
# As root: installs the Debian packages of scripts/debian-packages that are missing (apt-get, update retried once),
# then runs the network lab's own install-deps.sh ($NETLAB, default ../shared/netlab beside the checkout: its npm
# tracker and its checks that this kernel allows namespaces, veth, bridges and NAT).
# Otherwise: names what is missing and the command that installs it, once; the tests that need it skip with the same
# command as their reason.
#
# Usage: scripts/install-deps.sh [--strict] [--stamp FILE]
#   --strict      exit 1 when something is still missing or the lab's checks fail (implied by CI=true)
#   --stamp FILE  touch FILE when nothing is missing (the Makefile then skips this step until the list changes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
NETLAB=${NETLAB:-$(cd "$root/.." && pwd)/shared/netlab}
strict=0
case "${CI:-}" in '' | false | 0) ;; *) strict=1 ;; esac
stamp=
while [ $# -gt 0 ]; do
  case "$1" in
    --strict) strict=1 ;;
    --stamp) stamp=${2:?--stamp needs a file}; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "install-deps.sh: $*" >&2; }

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/debian-packages")

missing_packages() {
  local p
  for p in "${wanted[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || echo "$p"
  done
}

if ! command -v dpkg-query >/dev/null; then
  say "not a Debian system: install the equivalents of ${wanted[*]} yourself; tests that need them skip"
  [ "$strict" = 0 ] || exit 1
  exit 0
fi

mapfile -t missing < <(missing_packages)
lab=ok
if [ "$(id -u)" = 0 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get install ${missing[*]}"
    apt-get update -qq || { sleep 5; apt-get update -qq; }
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    mapfile -t missing < <(missing_packages)
  fi
  if [ -x "$NETLAB/install-deps.sh" ]; then
    "$NETLAB/install-deps.sh" >/dev/null 2>"${TMPDIR:-/tmp}/ferry-netlab-deps.$$" || lab=failed
    if [ "$lab" = failed ]; then
      cat "${TMPDIR:-/tmp}/ferry-netlab-deps.$$" >&2
      say "the network lab's $NETLAB/install-deps.sh failed (above): test/netlab will skip or, under CI, fail"
    fi
    rm -f "${TMPDIR:-/tmp}/ferry-netlab-deps.$$"
  else
    lab=absent
    say "no network lab at $NETLAB (set NETLAB=DIR): test/netlab will skip or, under CI, fail"
  fi
else
  if [ ${#missing[@]} -gt 0 ]; then
    say "not root, so these Debian packages stay missing: ${missing[*]}"
    say "the tests that need them are skipped; to install them: sudo make system-deps"
  fi
  lab=not-root
fi

if [ ${#missing[@]} -gt 0 ] || { [ "$lab" != ok ] && [ "$lab" != not-root ]; }; then
  [ "$strict" = 0 ] || { say "missing: ${missing[*]:-} (network lab: $lab)"; exit 1; }
  exit 0
fi
[ -z "$stamp" ] || { mkdir -p "$(dirname "$stamp")"; touch "$stamp"; }
