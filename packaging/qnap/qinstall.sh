#!/bin/sh
# Installer at the head of the QPKG (QDK layout): unpacks control.tar.gz and data.tar.gz that follow this fixed-size header,
# runs package_routines' hooks and registers the service in /etc/config/qpkg.conf when QTS's tools are there.
set -e
header_bytes=@HEADER_BYTES@
control_bytes=@CONTROL_BYTES@
data_bytes=@DATA_BYTES@
self="$0"
name=ferry
if [ -z "${QPKG_DIR:-}" ]; then
  base=$(/sbin/getcfg SHARE_DEF defVolMP -f /etc/config/def_share.info 2>/dev/null || echo /share/CACHEDEV1_DATA)
  QPKG_DIR="$base/.qpkg/$name"
fi
SYS_QPKG_DIR="$QPKG_DIR"
export SYS_QPKG_DIR
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-qpkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/control" "$tmp/data"
tail -c +"$((header_bytes + 1))" "$self" | head -c "$control_bytes" | tar xzf - -C "$tmp/control"
tail -c +"$((header_bytes + control_bytes + 1))" "$self" | head -c "$data_bytes" | tar xzf - -C "$tmp/data"
# shellcheck source=package_routines
. "$tmp/control/package_routines"
# The requirement check runs the new launcher from the unpacked payload before anything is replaced.
(SYS_QPKG_DIR="$tmp/data" && pkg_check_requirement)
pkg_init
pkg_pre_install
mkdir -p "$QPKG_DIR"
# Only the payload's files are replaced: var/ (keys, index, settings) stays.
(cd "$tmp/data" && tar cf - .) | (cd "$QPKG_DIR" && tar xf -)
pkg_install
pkg_post_install
if [ -x /sbin/setcfg ]; then
  # shellcheck source=qpkg.cfg
  . "$tmp/control/qpkg.cfg"
  conf=/etc/config/qpkg.conf
  /sbin/setcfg "$name" Name "$name" -f "$conf"
  /sbin/setcfg "$name" Display_Name "$QPKG_DISPLAY_NAME" -f "$conf"
  /sbin/setcfg "$name" Version "$QPKG_VER" -f "$conf"
  /sbin/setcfg "$name" Install_Path "$QPKG_DIR" -f "$conf"
  /sbin/setcfg "$name" Shell "$QPKG_DIR/$QPKG_SERVICE_PROGRAM" -f "$conf"
  /sbin/setcfg "$name" Web_Port "$QPKG_WEB_PORT" -f "$conf"
  /sbin/setcfg "$name" WebUI "$QPKG_WEBUI" -f "$conf"
  /sbin/setcfg "$name" Service_Port "$QPKG_SERVICE_PORT" -f "$conf"
  /sbin/setcfg "$name" Enable TRUE -f "$conf"
fi
"$QPKG_DIR/ferry.sh" start
echo "ferry: installed in $QPKG_DIR; web admin on port 8888"
exit 0
