# shellcheck shell=bash
# Shared by the scripts in this folder: finds or builds a Python >= 3.14.2 with the
# test requirements, and runs commands with it.
#
# On a machine that has such a Python the commands run on the host, in a virtual
# environment. Elsewhere (Debian 12 as root has only Python 3.11) they run in a
# Debian sid root made with debootstrap, with this checkout bind-mounted into it.
# Both are cached outside the checkout, so a fresh clone starts in seconds.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MISSKEY_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/misskey-ha}"
MIN_PYTHON="3.14.2"
ROOT="$CACHE/sid"
ROOT_REPO="/work/repo"

log() { printf '==> %s\n' "$*" >&2; }

python_ok() {
  "$1" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" 2>/dev/null
}

host_python() {
  local cand
  for cand in "${MISSKEY_HA_PYTHON:-}" python3.14 python3.15 python3; do
    [[ -n "$cand" ]] || continue
    if command -v "$cand" >/dev/null 2>&1 && python_ok "$cand"; then
      command -v "$cand"
      return 0
    fi
  done
  return 1
}

requirements_hash() {
  cat "$REPO/requirements_test.txt" "$@" 2>/dev/null | sha256sum | cut -c1-12
}

# --- sid root -------------------------------------------------------------

root_apt() {
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get \
    -o Acquire::Check-Valid-Until=false -qq "$@"
}

ensure_root() {
  if [[ -f "$ROOT/.ready" ]]; then
    return 0
  fi
  if [[ "$(id -u)" != 0 ]]; then
    log "No Python >= $MIN_PYTHON found, and building one needs root."
    log "Install Python $MIN_PYTHON or newer, or run this as root."
    exit 1
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "Installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  log "Building a Debian sid root with Python 3.14 in $ROOT (once)"
  rm -rf "$ROOT"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase \
    --include=python3.14,python3.14-venv,ca-certificates sid "$ROOT" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  touch "$ROOT/.ready"
}

# Extra Debian packages inside the root (for example a compiler for a full Home
# Assistant run, or chromium for the browser test).
ensure_root_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    chroot "$ROOT" dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "Installing ${missing[*]} in the sid root"
  sync_root_files
  root_apt update
  root_apt install -y --no-install-recommends "${missing[@]}" >/dev/null
}

sync_root_files() {
  # pip and apt fail TLS and DNS without the host's bundle and resolver.
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
}

# Runs "$@" in the root, with the checkout at $ROOT_REPO and the mounts private to
# this process, so nothing is left mounted when it ends.
in_root() {
  sync_root_files
  mkdir -p "$ROOT$ROOT_REPO"
  local q
  q="$(printf '%q ' "$@")"
  unshare --mount --propagation private -- /bin/bash -c "
    set -e
    mount --bind '$REPO' '$ROOT$ROOT_REPO'
    mount -t proc proc '$ROOT/proc'
    mount --rbind /dev '$ROOT/dev'
    mount -t tmpfs tmpfs '$ROOT/dev/shm'
    mount --bind /sys '$ROOT/sys'
    exec chroot '$ROOT' /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM=\"\${TERM:-dumb}\" CI=\"\${CI:-}\" MISSKEY_HA_SCREENSHOTS=\"\${MISSKEY_HA_SCREENSHOTS:-}\" MISSKEY_HA_IN_ROOT=1 \
      MISSKEY_HA_REQUIREMENTS=\"\${MISSKEY_HA_REQUIREMENTS:-}\" \
      /bin/bash -c 'cd $ROOT_REPO && exec \"\$@\"' bash $q
  "
}

# --- virtual environments -------------------------------------------------

# ensure_venv PYTHON REQUIREMENT_FILE...: a venv keyed by the files' contents.
# Prints its path.
ensure_venv() {
  local python="$1"; shift
  local key venv req
  key="$(cd "$REPO" && cat "$@" | sha256sum | cut -c1-12)"
  venv="$CACHE/venv-$key"
  if [[ ! -f "$venv/.ready" ]]; then
    log "Creating $venv from $*"
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --upgrade pip >&2
    # --no-compile: Python compiles what is imported when it is first
    # imported; compiling all of Home Assistant up front takes longer.
    for req in "$@"; do
      "$venv/bin/pip" install -q --no-compile -r "$REPO/$req" >&2
    done
    touch "$venv/.ready"
  fi
  printf '%s\n' "$venv"
}
