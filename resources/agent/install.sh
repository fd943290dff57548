#!/bin/sh
# install.sh: installs, re-installs or upgrades the hakit agent on this node (Linux x86_64, root).
#   sh hakit-agent-<version>-linux-x64/install.sh [--no-path-link]
#
# Safe to run again. Nothing changes until the prerequisites are met and every file of the package
# matches SHA256SUMS. An identical package already in place changes nothing (hakitd keeps running);
# any other one is copied into a new release folder, hakitd is stopped, $SAFEBIN is switched to the
# new release in one rename (a symbolic link), and hakitd is started again; if it does not come up,
# the previous release is put back and started. /opt/hakit/modules, /opt/hakit/private/modules and
# /var/hakit are never touched.
#
# hakitd runs under systemd (unit hakitd.service, enabled) when systemd is PID 1, and under
# hakitd-supervisor anywhere else (the lab, containers); both through $SAFEBIN/hakitd-service.
#
# Exit codes: 0 installed, 1 failed (the message says why), 2 usage, 3 prerequisites missing,
# 4 the package does not match its checksums.
set -eu
umask 022

SAFE=/opt/hakit
SAFEVAR=/var/hakit
RUN_DIR=/run/hakit
SAFEBIN=$SAFE/private/bin
RELEASES_DIR=$SAFE/private/releases
UNIT_FILE=/etc/systemd/system/hakitd.service
PATH_LINK=/usr/local/bin/hakit
LOCK_FILE=$RUN_DIR/install.lock
LOCK_WAIT_S=120
me=install.sh
usage="usage: sh install.sh [--no-path-link]
  --no-path-link  do not create the $PATH_LINK link to $SAFE/hakit
                  (hakit-lab uses it: a lab node shares /usr/local/bin with the lab's machine)"

say() { printf '%s\n' "$*"; }
die() {
  printf '%s: %s\n' "$me" "$*" >&2
  exit 1
}

path_link=yes
for arg in "$@"; do
  case $arg in
    --no-path-link) path_link=no ;;
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

case $0 in
  */*) pkg_dir=${0%/*} ;;
  *) pkg_dir=. ;;
esac
pkg_dir=$(cd "$pkg_dir" && pwd -P)
version=''
read -r version <"$pkg_dir/VERSION" 2>/dev/null || true
case $version in
  '' | *[!0-9A-Za-z.+-]*) version=unknown ;;
esac

systemd_is_pid1() {
  comm=''
  read -r comm </proc/1/comm 2>/dev/null || true
  [ "$comm" = systemd ] && [ -d /run/systemd/system ]
}

# ---- prerequisites: everything is checked and every problem reported at once -----------------
problems=''
problem() {
  problems="$problems
  - $1"
}
cannot_install() {
  printf '%s: cannot install hakit %s on this machine:%s\nNothing was changed.\n' "$me" "$version" "$problems" >&2
  exit 3
}

if systemd_is_pid1; then
  service_manager=systemd
  manager_command=systemctl:systemd
else
  service_manager=supervisor
  manager_command=setsid:util-linux
fi
missing=''
for spec in cat:coreutils chmod:coreutils cp:coreutils cut:coreutils date:coreutils \
  df:coreutils du:coreutils env:coreutils find:findutils flock:util-linux grep:grep id:coreutils \
  ln:coreutils mkdir:coreutils mv:coreutils readlink:coreutils rm:coreutils sed:sed \
  sha256sum:coreutils sleep:coreutils sort:coreutils tail:coreutils tr:coreutils uname:coreutils \
  wc:coreutils openssl:openssl "$manager_command"; do
  name=${spec%%:*}
  if ! command -v "$name" >/dev/null 2>&1; then
    missing="$missing
  - command not found: $name (package ${spec#*:})"
  fi
done
if command -v id >/dev/null 2>&1; then
  uid=$(id -u)
  [ "$uid" = 0 ] || problem "run install.sh as root (this is uid $uid)"
fi
if command -v uname >/dev/null 2>&1; then
  machine="$(uname -s) $(uname -m)"
  [ "$machine" = 'Linux x86_64' ] || problem "this package is for Linux x86_64; this machine is $machine"
fi
problems="$problems$missing"
[ -z "$problems" ] || cannot_install

# ---- the package must be exactly what was built -------------------------------------------------
refuse() {
  printf '%s: the package in %s does not match its SHA256SUMS; nothing was changed:\n%s\n' "$me" "$pkg_dir" "$1" >&2
  exit 4
}
cd "$pkg_dir"
[ -f SHA256SUMS ] || refuse "SHA256SUMS is missing"
if ! failures=$(sha256sum --check --strict --quiet SHA256SUMS 2>&1); then refuse "$failures"; fi
listed=$(cut -c67- SHA256SUMS | LC_ALL=C sort)
present=$(find . -type f ! -path ./SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort)
if [ "$listed" != "$present" ]; then
  extra=''
  set -f
  for path in $present; do
    printf '%s\n' "$listed" | grep -qxF -- "$path" || extra="$extra $path"
  done
  set +f
  refuse "files not listed in SHA256SUMS:$extra"
fi
odd=$(find . ! -type f ! -type d | sed 's|^\./||' | tr '\n' ' ')
[ -z "$odd" ] || refuse "links or special files in the package: $odd"
cd /

# ---- prerequisites that need the verified package ----------------------------------------------
if ! output=$("$pkg_dir/files/bin/node" -e 'process.exit(0)' 2>&1); then
  problem "the bundled Node runtime does not run here: $output"
fi
need_kib=$(($(du -sk "$pkg_dir/files" | cut -f1) * 11 / 10))
probe=$SAFE
while [ ! -d "$probe" ]; do
  probe=${probe%/*}
  [ -n "$probe" ] || probe=/
done
free_kib=$(df -Pk "$probe" | sed -n '2s/[[:space:]][[:space:]]*/ /gp' | cut -d' ' -f4)
if [ "${free_kib:-0}" -lt "$need_kib" ]; then
  problem "not enough free space for $SAFE: $((need_kib / 1024)) MiB needed, $((${free_kib:-0} / 1024)) MiB free in $probe"
fi
[ -z "$problems" ] || cannot_install

# ---- one install at a time ---------------------------------------------------------------------
mkdir -p "$RUN_DIR"
exec 9>"$LOCK_FILE"
flock -w "$LOCK_WAIT_S" 9 || die "another install.sh or uninstall.sh holds $LOCK_FILE (waited $LOCK_WAIT_S s)"

# ---- layout (existing modules and state are kept as they are) ----------------------------------
mkdir -p "$SAFE/modules" "$SAFE/private/modules" "$RELEASES_DIR" "$SAFEVAR/modules" "$SAFEVAR/log"
[ -d "$SAFEVAR/cluster" ] || mkdir -m 0700 "$SAFEVAR/cluster"
if [ -e "$SAFEBIN" ] && [ ! -L "$SAFEBIN" ]; then
  die "$SAFEBIN is a folder, not the link to a release that install.sh makes: move it away and run install.sh again"
fi
# Left by an interrupted run.
rm -rf "$RELEASES_DIR"/.stage-* "$RELEASES_DIR"/.trash-* "$SAFE/private"/.bin.new-*

release=$version-$(sha256sum <"$pkg_dir/SHA256SUMS" | cut -c1-12)
current=''
if [ -L "$SAFEBIN" ]; then current=$(readlink "$SAFEBIN"); fi

release_intact() {
  [ -f "$RELEASES_DIR/$1/.sha256sums" ] &&
    (cd "$RELEASES_DIR/$1" && sha256sum --check --strict --quiet .sha256sums >/dev/null 2>&1)
}

# $SAFEBIN -> releases/<release>, switched by rename(2): never missing, never half-updated.
switch_release() {
  ln -s "$1" "$SAFE/private/.bin.new-$$"
  mv -T "$SAFE/private/.bin.new-$$" "$SAFEBIN"
}

# Calls hakitd-service without the install lock (fd 9), which the supervisor must not inherit.
service() {
  "$SAFEBIN/hakitd-service" "$1" 9>&-
}

install_front_files() {
  for name in hakit safekit; do
    cp "$pkg_dir/files/hakit" "$SAFE/.$name.new-$$"
    chmod 0755 "$SAFE/.$name.new-$$"
    mv -f "$SAFE/.$name.new-$$" "$SAFE/$name"
  done
  if [ "$service_manager" = systemd ]; then
    cp "$SAFEBIN/hakitd.service" "$UNIT_FILE.new-$$"
    chmod 0644 "$UNIT_FILE.new-$$"
    mv -f "$UNIT_FILE.new-$$" "$UNIT_FILE"
    systemctl daemon-reload
    systemctl enable --quiet hakitd.service
  fi
  if [ "$path_link" = yes ]; then
    if [ ! -e "$PATH_LINK" ] && [ ! -L "$PATH_LINK" ] || [ "$(readlink "$PATH_LINK" || true)" = "$SAFE/hakit" ]; then
      mkdir -p "${PATH_LINK%/*}"
      ln -s "$SAFE/hakit" "$PATH_LINK.new-$$"
      mv -T "$PATH_LINK.new-$$" "$PATH_LINK"
    else
      say "warning: $PATH_LINK exists and is not a link to $SAFE/hakit: left as it is"
    fi
  fi
}

if [ "$current" = "releases/$release" ] && release_intact "$release"; then
  say "hakit $version is already installed (release $release, files intact)"
  install_front_files
  service start
else
  stage=$RELEASES_DIR/.stage-$$
  cp -R "$pkg_dir/files/bin" "$stage"
  sed -n 's|^\([0-9a-f]\{64\}\)  files/bin/|\1  |p' "$pkg_dir/SHA256SUMS" >"$stage/.sha256sums"
  if ! (cd "$stage" && sha256sum --check --strict --quiet .sha256sums >/dev/null 2>&1); then
    rm -rf "$stage"
    die "the copy of the package in $stage does not match SHA256SUMS (disk full?); nothing was replaced"
  fi
  if [ -n "$current" ] && [ -x "$SAFEBIN/hakitd-service" ]; then
    say "stopping hakitd (release ${current#releases/})"
    if ! service stop; then
      rm -rf "$stage"
      die "cannot stop the running hakitd (see above); nothing was replaced"
    fi
  fi
  if [ -e "$RELEASES_DIR/$release" ]; then mv "$RELEASES_DIR/$release" "$RELEASES_DIR/.trash-$$"; fi
  mv "$stage" "$RELEASES_DIR/$release"
  switch_release "releases/$release"
  install_front_files
  if ! service start; then
    if [ -n "$current" ] && [ "$current" != "releases/$release" ] && [ -d "$SAFE/private/$current" ]; then
      service stop || true
      switch_release "$current"
      service start || true
      die "hakitd $version did not start (see above and $SAFEVAR/log/hakitd.log); rolled back to ${current#releases/}"
    fi
    die "hakitd $version did not start (see above and $SAFEVAR/log/hakitd.log)"
  fi
  for dir in "$RELEASES_DIR"/* "$RELEASES_DIR"/.trash-*; do
    if [ -e "$dir" ] && [ "$dir" != "$RELEASES_DIR/$release" ]; then rm -rf "$dir"; fi
  done
fi
say "installed hakit $version in $SAFE (release $release, hakitd under $service_manager)"
