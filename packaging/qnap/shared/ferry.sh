#!/bin/sh
# QTS service script: start, stop, restart and status of the Ferry daemon (web admin on 8888, sync on 22100).
# First start: the web page asks a browser on another machine for the one-time setup code, which the daemon writes
# to var/admin-setup-code (owner-only) and to var/ferry.log; `ferry admin setup-code` prints it. A password file
# given as FERRY_ADMIN_PASSWORD_FILE is stored before the web port opens instead (and removed once read).
CONF=/etc/config/qpkg.conf
QPKG_NAME="ferry"
if [ -z "${QPKG_ROOT:-}" ]; then
  QPKG_ROOT=$(/sbin/getcfg "$QPKG_NAME" Install_Path -f "$CONF" 2>/dev/null)
fi
[ -n "$QPKG_ROOT" ] || QPKG_ROOT=$(cd "$(dirname "$0")" && pwd)
FERRY_HOME="$QPKG_ROOT/var"
PIDFILE="$FERRY_HOME/ferry.pid"
LOG="$FERRY_HOME/ferry.log"
export FERRY_HOME
export FERRY_NATIVE_CACHE="$FERRY_HOME/.cache/native"

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  if [ -x /sbin/getcfg ] && [ "$(/sbin/getcfg "$QPKG_NAME" Enable -u -d FALSE -f "$CONF")" = "UNKNOWN" ]; then
    /sbin/setcfg "$QPKG_NAME" Enable TRUE -f "$CONF"
  elif [ -x /sbin/getcfg ] && [ "$(/sbin/getcfg "$QPKG_NAME" Enable -u -d FALSE -f "$CONF")" != "TRUE" ]; then
    echo "$QPKG_NAME is disabled."
    return 1
  fi
  running && return 0
  mkdir -p "$FERRY_HOME"
  chmod 700 "$FERRY_HOME"
  password_args=""
  [ -n "${FERRY_ADMIN_PASSWORD_FILE:-}" ] && [ -f "$FERRY_ADMIN_PASSWORD_FILE" ] && password_args="--admin-password-file $FERRY_ADMIN_PASSWORD_FILE"
  # FERRY_RUN_ARGS: extra `ferry run` flags (tests bind to loopback with it); split into words on purpose.
  # shellcheck disable=SC2086
  "$QPKG_ROOT/bin/ferry-launch" run --home "$FERRY_HOME" $password_args ${FERRY_RUN_ARGS:-} >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
}

stop() {
  running || { rm -f "$PIDFILE"; return 0; }
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  tries=0
  while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 20 ]; do
    tries=$((tries + 1))
    sleep 1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDFILE"
}

case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running; then echo "$QPKG_NAME is running"; exit 0; fi; echo "$QPKG_NAME is stopped"; exit 3 ;;
  *) echo "usage: $0 {start|stop|restart|status}" >&2; exit 1 ;;
esac
exit 0
