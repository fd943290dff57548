// The program that runs as PID 1 of every lab node. It gives the node its hostname, its own
// disks (loop-mounted ext4 images, so `disk-full` fills the node's disk and nothing else), its
// private hakit directories, its /etc/hosts, and its sshd; then it reaps orphans until killed.
// Kept as text here and written into the lab directory so the bundled CLI needs no extra file.
export const nodeInitScript = `#!/bin/bash
set -euo pipefail
node_dir="$HLAB_NODE_DIR"
hostname "$HLAB_NODE"
mount --make-rprivate /
for disk in sys srv; do
  mkdir -p "$node_dir/mnt/$disk"
  mount -o loop,noatime "$node_dir/$disk.img" "$node_dir/mnt/$disk"
done
bind_private() {
  mkdir -p "$1" "$2"
  mount --bind "$1" "$2"
}
bind_private "$node_dir/mnt/sys/opt-hakit" /opt/hakit
bind_private "$node_dir/mnt/sys/var-hakit" /var/hakit
bind_private "$node_dir/mnt/sys/etc-hakit" /etc/hakit
bind_private "$node_dir/mnt/sys/run-hakit" /run/hakit
# Folders of the host under /tmp that nodes must still see (the repository when it is checked out
# there): held aside before /tmp is replaced, then bound back at the same path.
keep_index=0
for keep in $HLAB_KEEP_DIRS; do
  mkdir -p "$node_dir/mnt/keep$keep_index"
  mount --bind "$keep" "$node_dir/mnt/keep$keep_index"
  keep_index=$((keep_index + 1))
done
bind_private "$node_dir/mnt/sys/tmp" /tmp
chmod 1777 /tmp
keep_index=0
for keep in $HLAB_KEEP_DIRS; do
  mkdir -p "$keep"
  mount --bind "$node_dir/mnt/keep$keep_index" "$keep"
  keep_index=$((keep_index + 1))
done
bind_private "$node_dir/mnt/srv/srv" /srv
mount --bind "$HLAB_HOSTS_FILE" /etc/hosts
mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$node_dir/ssh/sshd_config" >>"$node_dir/sshd.log" 2>&1 &
touch "$node_dir/ready"
trap 'kill -TERM -1 2>/dev/null || true; exit 0' TERM INT
while true; do
  sleep 3600 &
  wait $! || true
done
`;
