#!/usr/bin/env bash
# Issue 20's check: the README's commands on a fresh Debian 12 root file system (debootstrap bookworm) that has only
# this machine's Node and npm copied in, with /proc, /sys and /dev mounted. As root; heavy (a whole `make test`).
#
# Usage: scripts/fresh-machine-check.sh [ROOTFS] [COMMAND...]
#   ROOTFS   default /var/tmp/ferry-fresh-root (made by debootstrap when it does not exist yet; kept afterwards)
#   COMMAND  what to run in the clone, default: make test (then `make run` must serve the page on :8888)
# The clone is of this checkout's HEAD, at /root/work/ferry in ROOTFS; the network lab is copied beside it
# (/root/work/shared/netlab, where the Makefile looks). Everything else comes from `make` itself.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "fresh-machine-check.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/var/tmp/ferry-fresh-root}
shift || true
[ $# -gt 0 ] || set -- make test
NETLAB=${NETLAB:-$(cd "$here/.." && pwd)/shared/netlab}
say() { echo "fresh-machine-check.sh: $*" >&2; }

if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap
  say "debootstrap bookworm $root"
  # make and git: the README's commands are make commands, run in a git clone.
  debootstrap --include=make,git,ca-certificates bookworm "$root" http://deb.debian.org/debian
fi

# This machine's Node and npm, nothing else of it (plus its resolver and CA bundle, to reach the same mirrors).
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
install -D -m 755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
rm -rf "$root/usr/local/lib/node_modules/npm"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp /etc/resolv.conf "$root/etc/resolv.conf"
for f in /usr/local/share/ca-certificates/*.crt; do [ -f "$f" ] && cp "$f" "$root/usr/local/share/ca-certificates/"; done
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -f "$root/etc/apt/sources.list"
fi
for f in /etc/apt/apt.conf.d/99*; do [ -f "$f" ] && cp "$f" "$root/etc/apt/apt.conf.d/"; done
# No services start inside (as in a container): the packages' postinst would try.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"

# The clone and the lab beside it.
rm -rf "$root/root/work"
mkdir -p "$root/root/work/shared"
git clone -q "$here" "$root/root/work/ferry"
git -C "$root/root/work/ferry" checkout -q "$(git -C "$here" rev-parse HEAD)"
cp -a "$NETLAB" "$root/root/work/shared/netlab"

# /proc, /sys, /dev; the root bind-mounted onto itself (private, so nothing propagates back to this machine) so that
# `ip netns` can make /run/netns a shared mount inside it.
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount -R -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount --bind "$root" "$root" && mounted=("$root")
mount --make-private "$root"
mount -t proc proc "$root/proc" && mounted=("$root/proc" "${mounted[@]}")
for d in sys dev; do
  mount --rbind "/$d" "$root/$d" && mount --make-rslave "$root/$d" && mounted=("$root/$d" "${mounted[@]}")
done
mount -t tmpfs tmpfs "$root/run" && mounted=("$root/run" "${mounted[@]}")
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"

# A clean environment; only a CA bundle that this machine's Node is told about is passed on (an intercepting proxy's).
in_root() {
  env -i HOME=/root PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb CI="${CI:-}" \
    ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt} \
    chroot "$root" bash -c 'cd /root/work/ferry && "$@"' _ "$@"
}

say "in $root: cd /root/work/ferry && $*"
start=$(date +%s)
in_root bash -c 'node --version && npm --version'
in_root "$@"
say "$* passed in $(( $(date +%s) - start )) s"

# `make run` serves the page on :8888 (this machine's network: the chroot shares it).
if curl -s -o /dev/null http://127.0.0.1:8888/; then
  say "something already answers on :8888 here; not checking make run"
  exit 0
fi
start=$(date +%s.%N)
# In its own process group, so that it and its daemon stop by that group's id.
setsid bash -c "$(declare -f in_root); root='$root'; in_root make run" >"$root/root/work/make-run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1200); do
  curl -sf -o /dev/null http://127.0.0.1:8888/ && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$root/root/work/make-run.log" >&2; say "make run exited"; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null http://127.0.0.1:8888/ || { cat "$root/root/work/make-run.log" >&2; say "make run: no page on :8888"; exit 1; }
say "make run: the page on :8888 after $(echo "$(date +%s.%N) - $start" | bc) s"
kill -TERM -- "-$run_pid"
wait "$run_pid" || true
