#!/usr/bin/env bash
# Build (or reuse) the separate MONAI Label environment of satgate-monai and print its python on the last line.
#
#   bash .ci/monailabel_env.sh            # -> .../satgate-monai/monailabel-<hash>/bin/python
#   bash .ci/monailabel_env.sh --path     # print where that python is (or will be), build nothing
#
# MONAI Label 0.8.5 needs pydicom<3 and dicomweb-client<0.60, which conflict with the project's environment, so it
# gets its own virtual environment, built from satgate_monai/label/requirements-monailabel.txt and cached OUTSIDE the
# repository in ${SATGATE_MONAILABEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}/monailabel-<hash>, where
# <hash> covers that file and the base python's version. Idempotent: a complete environment with that hash is reused
# (a few seconds); any change to the requirements builds a new one. Atomic: built in a temporary folder beside it and
# renamed into place only after an import check passed, under a lock, so concurrent callers never see half an
# environment. satgate_monai is NOT installed into it: `python -m satgate_monai.label serve` puts the running package
# on PYTHONPATH, so the cached environment stays valid for every checkout.
#
# Environment variables: SATGATE_MONAILABEL_BASE_PYTHON (python used to create the venv, default python3),
# SATGATE_MONAILABEL_CACHE (cache folder), SATGATE_MONAILABEL_KEEP_OLD=1 (keep environments of other hashes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
req="$repo/satgate_monai/label/requirements-monailabel.txt"
base_python="${SATGATE_MONAILABEL_BASE_PYTHON:-python3}"
cache="${SATGATE_MONAILABEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}"

log() { echo "[monailabel_env] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f "$req" ]] || die "requirements file not found: $req"
command -v "$base_python" >/dev/null 2>&1 || die "base python '$base_python' not found (set SATGATE_MONAILABEL_BASE_PYTHON)"
command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is needed to build the environment safely"

pyver="$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
hash="$( { cat "$req"; echo "python=$pyver"; } | sha256sum | cut -c1-16)"
env_dir="$cache/monailabel-$hash"
py="$env_dir/bin/python"
if [[ "${1:-}" == "--path" ]]; then
    echo "$py"
    exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument: $1 (usage: $0 [--path])"

# The import check a usable environment must pass (satgate_monai comes from this checkout via PYTHONPATH).
check_env() {
    [[ -f "$1/.satgate-complete" && -x "$1/bin/python" ]] || return 1
    PYTHONPATH="$repo" "$1/bin/python" -c "import monailabel, torchvision, monai, satgate_monai, pydicom_seg" \
        >/dev/null 2>&1
}

mkdir -p "$cache"
if check_env "$env_dir"; then
    log "reusing $env_dir"
    echo "$py"
    exit 0
fi

exec 9>"$cache/.monailabel-$hash.lock"
flock 9
if check_env "$env_dir"; then  # another caller built it while we waited for the lock
    log "reusing $env_dir (built by a concurrent caller)"
    echo "$py"
    exit 0
fi

start=$(date +%s)
tmp="$cache/.tmp-monailabel-$hash-$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
log "building $env_dir from $req (python $pyver); this takes a few minutes once"
"$base_python" -m venv "$tmp"
pip_log="$tmp/pip.log"
# Everything except monailabel with its dependencies; then monailabel alone with --no-deps, repeating the torch pins so
# pip cannot swap torch.
torch_pins=$(grep -E '^(torch|torchvision)==' "$req" | tr '\n' ' ')
ml_pin=$(grep -E '^monailabel==' "$req") || die "no 'monailabel==' line in $req"
grep -vE '^monailabel==' "$req" >"$tmp/requirements-deps.txt"
if ! "$tmp/bin/python" -m pip install --no-input -r "$tmp/requirements-deps.txt" >"$pip_log" 2>&1; then
    tail -30 "$pip_log" >&2
    die "pip install of $req failed (log above)"
fi
# shellcheck disable=SC2086
if ! "$tmp/bin/python" -m pip install --no-input --no-deps "$ml_pin" $torch_pins >>"$pip_log" 2>&1; then
    tail -30 "$pip_log" >&2
    die "pip install --no-deps $ml_pin failed (log above)"
fi
"$tmp/bin/python" -m pip check >>"$pip_log" 2>&1 || true  # monailabel's unmet optional deps (sam2...) are expected

# Fix the absolute paths pip/venv wrote into bin/ (shebangs, activate scripts) before the rename.
grep -rlI --null -F "$tmp" "$tmp/bin" 2>/dev/null | xargs -0 -r sed -i "s#$tmp#$env_dir#g"
touch "$tmp/.satgate-complete"
PYTHONPATH="$repo" "$tmp/bin/python" -c "import monailabel, torchvision, monai, satgate_monai, pydicom_seg" \
    || die "import check failed in the new environment $tmp (see $pip_log)"

rm -rf "$env_dir"
mv "$tmp" "$env_dir"
trap - EXIT
if [[ "${SATGATE_MONAILABEL_KEEP_OLD:-0}" != 1 ]]; then
    for old in "$cache"/monailabel-*; do
        [[ -d "$old" && "$old" != "$env_dir" ]] || continue
        log "removing the environment of an older requirements file: $old"
        rm -rf "$old"
    done
fi
log "built $env_dir in $(( $(date +%s) - start )) s ($(du -sh "$env_dir" | cut -f1))"
check_env "$env_dir" || die "the environment $env_dir fails the import check after the rename"
echo "$py"
