#!/bin/sh
# Runs one command inside the Ironic tier's chroot (see build-chroot.sh), isolated so that nothing
# can leak onto the host:
#
#   in-chroot.sh CHROOT STATE_DIR [NAME=VALUE...] COMMAND [ARG...]
#
# - A private mount namespace (unshare --mount): /proc, /sys, /dev, a fresh /tmp and STATE_DIR
#   (bound at /mnt) exist only for this command and vanish with it, even after SIGKILL. Several
#   commands can share one chroot at once (each has its own /mnt and /tmp).
# - A private PID namespace with --kill-child: the command is PID 1 of it; when unshare dies,
#   for any reason, the kernel kills every process left in the namespace (socat, ipmitool...).
#   This script execs unshare, so the PID the caller spawned is unshare's PID.
# - setpriv --pdeathsig KILL: if the caller dies, even by SIGKILL (a crashed or killed test
#   worker), the kernel SIGKILLs unshare, and with it the whole namespace: nothing outlives it.
# - The host's network namespace: 127.0.0.1 is the host's loopback, so Ironic reaches the test's
#   VNC servers and the test reaches Ironic. Bind loopback only in the configs you pass.
# - The environment is emptied (env -i) except PATH, LANG, HOME=/mnt, XDG_CACHE_HOME and the
#   NAME=VALUE pairs given.
#
# STATE_DIR may be '-' for none (an empty tmpfs at /mnt then). Stopping: SIGTERM the command itself (the only child of this PID)
# for a graceful exit; SIGKILL this PID to kill everything at once (SIGTERM/SIGINT to unshare
# itself are blocked by unshare while it waits).
set -eu
if [ "$#" -lt 3 ]; then
  echo "usage: $0 CHROOT STATE_DIR [NAME=VALUE...] COMMAND [ARG...]" >&2
  exit 2
fi
root=$1
state=$2
shift 2
if [ ! -x "$root/usr/bin/env" ]; then
  echo "in-chroot.sh: $root is not a built chroot (run scripts/ironic-tier/build-chroot.sh)" >&2
  exit 2
fi
# shellcheck disable=SC2016 # expanded by the inner shell
exec setpriv --pdeathsig KILL -- unshare --mount --propagation private --pid --fork --kill-child -- /bin/sh -euc '
  root=$1
  state=$2
  shift 2
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777,size=512m tmpfs "$root/tmp"
  if [ "$state" != - ]; then mount --bind "$state" "$root/mnt"; else mount -t tmpfs -o size=64m tmpfs "$root/mnt"; fi
  exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME=/mnt XDG_CACHE_HOME=/mnt/.cache "$@"
' sh "$root" "$state" "$@"
