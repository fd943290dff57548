#!/bin/sh
# uninstall.sh [--purge]: removes the hakit agent from this node. Stops hakitd (and its
# supervisor), removes the systemd unit, the program files (/opt/hakit/hakit, /opt/hakit/safekit,
# /opt/hakit/private/bin and its releases) and the /usr/local/bin/hakit link when it points to
# hakit. Keeps /var/hakit (module state, logs, cluster configuration), /opt/hakit/modules and
# /opt/hakit/private/modules, unless --purge, which removes them too.
# Also installed as /opt/hakit/private/bin/uninstall.sh.
# Exit codes: 0 removed (or nothing to remove), 1 failed, 2 usage, 3 not run as root.
set -eu
umask 022

SAFE=/opt/hakit
SAFEVAR=/var/hakit
RUN_DIR=/run/hakit
SAFEBIN=$SAFE/private/bin
UNIT_FILE=/etc/systemd/system/hakitd.service
PATH_LINK=/usr/local/bin/hakit
LOCK_FILE=$RUN_DIR/install.lock
LOCK_WAIT_S=120
me=uninstall.sh
usage="usage: sh uninstall.sh [--purge]
  --purge  also remove $SAFEVAR, $SAFE/modules and $SAFE/private/modules"

say() { printf '%s\n' "$*"; }
die() {
  printf '%s: %s\n' "$me" "$*" >&2
  exit 1
}

purge=no
for arg in "$@"; do
  case $arg in
    --purge) purge=yes ;;
    -h | --help)
      say "$usage"
      exit 0
      ;;
    *)
      printf '%s: unknown argument %s\n%s\n' "$me" "$arg" "$usage" >&2
      exit 2
      ;;
  esac
done

uid=$(id -u)
if [ "$uid" != 0 ]; then
  printf '%s: run uninstall.sh as root (this is uid %s). Nothing was changed.\n' "$me" "$uid" >&2
  exit 3
fi

systemd_is_pid1() {
  comm=''
  read -r comm </proc/1/comm 2>/dev/null || true
  [ "$comm" = systemd ] && [ -d /run/systemd/system ]
}

mkdir -p "$RUN_DIR"
exec 9>"$LOCK_FILE"
flock -w "$LOCK_WAIT_S" 9 || die "another install.sh or uninstall.sh holds $LOCK_FILE (waited $LOCK_WAIT_S s)"

if [ -x "$SAFEBIN/hakitd-service" ]; then
  "$SAFEBIN/hakitd-service" stop 9>&- || die "cannot stop hakitd (see above); nothing was removed"
else
  say "no $SAFEBIN/hakitd-service: hakitd is not installed here (removing what is left)"
fi
if [ -f "$UNIT_FILE" ]; then
  if systemd_is_pid1; then systemctl disable --quiet hakitd.service || true; fi
  rm -f "$UNIT_FILE"
  if systemd_is_pid1; then systemctl daemon-reload || true; fi
fi
if [ -L "$PATH_LINK" ] && [ "$(readlink "$PATH_LINK")" = "$SAFE/hakit" ]; then rm -f "$PATH_LINK"; fi
rm -f "$SAFE/hakit" "$SAFE/safekit" "$SAFE"/.hakit.new-* "$SAFE"/.safekit.new-*
rm -rf "$SAFEBIN" "$SAFE/private/releases" "$SAFE/private"/.bin.new-*
rm -f "$RUN_DIR/hakitd.sock" "$RUN_DIR/hakitd.pid" "$RUN_DIR/hakitd-supervisor.pid" "$RUN_DIR/hakitd-supervisor.lock"

# Removes what a folder holds, then the folder when it can (a mount point stays, empty).
empty_and_remove() {
  if [ -d "$1" ]; then
    find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    rmdir "$1" 2>/dev/null || true
  fi
}

if [ "$purge" = yes ]; then
  empty_and_remove "$SAFE/modules"
  empty_and_remove "$SAFE/private"
  empty_and_remove "$SAFEVAR"
  rmdir "$SAFE" 2>/dev/null || true
  say "hakit removed, with its modules and state (--purge)"
else
  say "hakit removed; kept $SAFEVAR, $SAFE/modules and $SAFE/private/modules (remove them with --purge)"
fi
