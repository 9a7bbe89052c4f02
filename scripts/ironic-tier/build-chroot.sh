#!/usr/bin/env bash
# Builds (or reuses) the Debian trixie chroot that the real-Ironic and real-Nova interop tiers run in.
#
# Why a chroot: Debian 12 ships Ironic 21 (Zed), which has no graphical consoles; trixie ships
# Ironic 29 (2025.1), which does. The chroot lives outside the repo and is cached between runs:
#   ${VNCGATE_IRONIC_CHROOT:-/var/cache/vncgate/ironic-trixie}
#
# Idempotent: a stamp file inside the chroot records the recipe (suite, package list, recipe
# version). When it matches, the script exits at once (~0 s). When it differs, or the chroot is
# missing or half-built, the chroot is rebuilt from nothing in a side directory and swapped in.
#
# Nothing is ever mounted in the host's mount namespace: the package install runs under
# `unshare --mount` (private propagation), so /proc, /sys and /dev vanish with that process even if
# it is killed. The same holds for Ironic itself (see in-chroot.sh).
#
# Environment:
#   VNCGATE_IRONIC_CHROOT   where the chroot lives (default /var/cache/vncgate/ironic-trixie)
#   VNCGATE_IRONIC_MIRROR   Debian mirror URL; default: the machine's own, read from its apt sources
#
# Output: progress on stderr; on success the chroot path on stdout (one line).
# Exit codes: 0 ok, 2 prerequisites missing (not root, no debootstrap, no mirror), 1 build failed.
set -euo pipefail

CHROOT="${VNCGATE_IRONIC_CHROOT:-/var/cache/vncgate/ironic-trixie}"
SUITE=trixie
# ironic-common: `ironic` (all-in-one API + conductor + noVNC proxy), `ironic-dbsync`.
# python3-ironicclient: the `baremetal` CLI. novnc + python3-websockify: what Ironic's own noVNC
# proxy serves and relays with (Recommends only, so named here since Recommends are off).
# ipmitool + socat: the `ipmitool-socat` serial console interface shells out to both.
# nova-api + nova-common: the real-Nova tier (test/support/nova.ts): `nova-manage` (schema, cell
# mappings), Nova's own objects (ConsoleAuthToken.authorize() writes the token rows) and
# `nova-api-wsgi` under uwsgi (uwsgi-plugin-python3 comes as nova-api's dependency).
PACKAGES=(ironic-common python3-ironicclient novnc python3-websockify ipmitool socat nova-api nova-common)
# Packages whose versions the stamp's second line records (test/support/{ironic,nova}.ts read it).
VERSIONED=(ironic-common python3-ironicclient nova-common nova-api python3-nova uwsgi-core)
# Bump when the recipe changes in a way the package list does not show.
RECIPE_VERSION=1
STAMP_REL=etc/vncgate-ironic-tier.stamp
STAMP_KEY="recipe=${RECIPE_VERSION} suite=${SUITE} packages=${PACKAGES[*]}"

log() { printf '[build-chroot %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { local code=$1; shift; printf '[build-chroot] ERROR: %s\n' "$*" >&2; exit "$code"; }

stamp_matches() {
  local dir=$1
  [[ -f "$dir/$STAMP_REL" ]] && [[ "$(head -n 1 "$dir/$STAMP_REL")" == "$STAMP_KEY" ]]
}

# Fast path without the lock: a complete chroot with the current recipe.
if stamp_matches "$CHROOT"; then
  log "reusing $CHROOT ($(sed -n 2p "$CHROOT/$STAMP_REL"))"
  printf '%s\n' "$CHROOT"
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die 2 "must run as root (debootstrap and chroot need it); uid is $(id -u)"

mkdir -p "$(dirname "$CHROOT")"
# One builder at a time per chroot path (parallel CI jobs, two engineers' test runs).
exec 9>"$CHROOT.lock"
if ! flock -w 1800 9; then die 1 "another build of $CHROOT held $CHROOT.lock for 30 minutes"; fi
if stamp_matches "$CHROOT"; then
  log "reusing $CHROOT (built by a concurrent run)"
  printf '%s\n' "$CHROOT"
  exit 0
fi

# --- prerequisites ------------------------------------------------------------------------------

for tool in unshare chroot flock wget; do
  command -v "$tool" >/dev/null || die 2 "'$tool' not found on PATH"
done
if ! command -v debootstrap >/dev/null; then
  log "debootstrap not installed; trying apt-get install -y debootstrap"
  if ! { apt-get install -y debootstrap >&2 || { apt-get update >&2 && apt-get install -y debootstrap >&2; }; }; then
    die 2 "debootstrap is not installed and 'apt-get install -y debootstrap' failed"
  fi
fi
[[ -f /usr/share/debootstrap/scripts/$SUITE ]] || die 2 "this debootstrap ($(debootstrap --version)) has no script for $SUITE"

# The machine's Debian mirror: the first deb822 or one-line apt source for the host's own suite with
# the `main` component. Read at run time so no host name is ever written into the repo.
apt_source_candidates() {
  local codename
  # shellcheck disable=SC1091 # the host's file, read at run time
  codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  [[ -n "$codename" ]] || return 1
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v want="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && (" " comps " ") ~ / main / && enabled != "no" && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = ""; uris = ""; suites = ""; comps = ""; enabled = ""
      }
      /^#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "");
        if (key == "types") types = $0; else if (key == "uris") uris = $0;
        else if (key == "suites") suites = $0; else if (key == "components") comps = $0;
        else if (key == "enabled") enabled = tolower($0) }
      END { if (!found) flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    # deb [options] URI SUITE COMPONENTS...
    awk -v want="$codename" '$1 == "deb" {
        i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == want) { for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit } } }' "$f"
  done
}

host_mirror() {
  local out
  out=$(apt_source_candidates)
  [[ -n "$out" ]] || return 1
  printf '%s\n' "${out%%$'\n'*}"
}

MIRROR="${VNCGATE_IRONIC_MIRROR:-}"
if [[ -z "$MIRROR" ]]; then
  MIRROR=$(host_mirror) || die 2 "no Debian mirror found in /etc/apt/sources.list{,.d} (set VNCGATE_IRONIC_MIRROR)"
fi
MIRROR="${MIRROR%/}"
mirror_from="the apt sources of this machine"
[[ -z "${VNCGATE_IRONIC_MIRROR:-}" ]] || mirror_from=VNCGATE_IRONIC_MIRROR
log "mirror: $MIRROR (from $mirror_from)"
if ! wget -q -O /dev/null --timeout=20 --tries=2 "$MIRROR/dists/$SUITE/InRelease"; then
  die 2 "mirror $MIRROR does not serve $SUITE (cannot fetch dists/$SUITE/InRelease)"
fi

# --- build --------------------------------------------------------------------------------------

# Refuse to delete anything that has a mount below it (rm -rf through a bind-mounted /dev or /sys
# would be a disaster). Our own runs never mount in this namespace; someone's manual chroot might.
assert_unmounted() {
  local dir
  dir=$(realpath -m "$1")
  if awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die 1 "refusing to remove $dir: something is mounted below it (see /proc/self/mountinfo)"
  fi
}

remove_tree() {
  [[ -e "$1" ]] || return 0
  assert_unmounted "$1"
  rm -rf --one-file-system -- "$1"
}

WORK="$CHROOT.build"
started=$SECONDS
remove_tree "$WORK"
trap 'log "build failed; partial tree left at $WORK (removed on the next run)"' ERR

log "debootstrap --variant=minbase $SUITE $WORK (takes about a minute)"
debootstrap --variant=minbase "$SUITE" "$WORK" "$MIRROR" >"$WORK.debootstrap.log" 2>&1 || {
  tail -n 30 "$WORK.debootstrap.log" >&2
  die 1 "debootstrap failed (full log: $WORK.debootstrap.log)"
}
rm -f "$WORK.debootstrap.log"

# Forbid every service start inside the chroot (invoke-rc.d consults this; 101 = action forbidden).
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 0755 "$WORK/usr/sbin/policy-rc.d"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$WORK/etc/apt/sources.list"
cat >"$WORK/etc/apt/apt.conf.d/90vncgate" <<'EOF'
// vncgate ironic tier: the mirror may serve a dated snapshot; keep the chroot small.
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
cp -L /etc/resolv.conf "$WORK/etc/resolv.conf" 2>/dev/null || true

log "apt-get install ${PACKAGES[*]}"
# Private mount namespace: the mounts disappear with this process, whatever happens to it.
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount --propagation private -- /bin/sh -euc '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
    /bin/sh -euc "apt-get update -q && apt-get install -y -q \"\$@\" && apt-get clean" sh "$@"
' sh "$WORK" "${PACKAGES[@]}" >"$WORK.apt.log" 2>&1 || {
  tail -n 40 "$WORK.apt.log" >&2
  die 1 "apt-get install in the chroot failed (full log: $WORK.apt.log)"
}
rm -f "$WORK.apt.log"

# shellcheck disable=SC2016 # dpkg-query format, not shell
versions=$(chroot "$WORK" dpkg-query -W -f '${Package}=${Version} ' "${VERSIONED[@]}")
{
  printf '%s\n' "$STAMP_KEY"
  printf '%s\n' "${versions% }"
  printf 'built=%s seconds=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - started))"
} >"$WORK/$STAMP_REL"

if [[ -e "$CHROOT" ]]; then
  assert_unmounted "$CHROOT"
  old="$CHROOT.old.$$"
  mv -- "$CHROOT" "$old"
  mv -- "$WORK" "$CHROOT"
  remove_tree "$old"
else
  mv -- "$WORK" "$CHROOT"
fi
trap - ERR
log "built $CHROOT in $((SECONDS - started)) s: $versions($(du -sh --one-file-system "$CHROOT" | cut -f1))"
printf '%s\n' "$CHROOT"
