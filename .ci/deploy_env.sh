#!/usr/bin/env bash
# Build (or reuse) the separate MONAI Deploy environment of satgate-monai and print its python on the last line.
#
#   bash .ci/deploy_env.sh            # -> .../satgate-monai/deploy-<hash>/bin/python
#   bash .ci/deploy_env.sh --path     # print where that python is (or will be), build nothing
#
# The MONAI Deploy App SDK brings the Holoscan SDK, tritonclient and protobuf 6 (about 570 MB), which the project's
# environment does not need, so the applications in deploy/ run in their own virtual environment, built from
# deploy/requirements-deploy.txt and cached OUTSIDE the repository in
# ${SATGATE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}/deploy-<hash>, where <hash> covers that file
# and the base python's version. Idempotent (a complete environment with that hash is reused), atomic (built beside
# it and renamed into place after an import check, under a lock). satgate_monai is NOT installed into it: the apps
# run with the checkout on PYTHONPATH (a MAP installs it from the app's requirements.txt instead).
#
# Environment variables: SATGATE_DEPLOY_BASE_PYTHON (python used to create the venv, default python3),
# SATGATE_DEPLOY_CACHE (cache folder).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
req="$repo/deploy/requirements-deploy.txt"
base_python="${SATGATE_DEPLOY_BASE_PYTHON:-python3}"
cache="${SATGATE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}"

log() { echo "[deploy_env] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f "$req" ]] || die "requirements file not found: $req"
command -v "$base_python" >/dev/null 2>&1 || die "base python '$base_python' not found (set SATGATE_DEPLOY_BASE_PYTHON)"
command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is needed to build the environment safely"

pyver="$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
hash="$( { cat "$req"; echo "python=$pyver"; } | sha256sum | cut -c1-16)"
env_dir="$cache/deploy-$hash"
py="$env_dir/bin/python"
if [[ "${1:-}" == "--path" ]]; then
    echo "$py"
    exit 0
fi
[[ $# -eq 0 ]] || die "unknown argument: $1 (usage: $0 [--path])"

check_env() {
    [[ -f "$1/.satgate-complete" && -x "$1/bin/python" ]] || return 1
    PYTHONPATH="$repo" "$1/bin/python" -c "import monai.deploy.core, holoscan, highdicom, satgate_monai" \
        >/dev/null 2>&1
}

mkdir -p "$cache"
if check_env "$env_dir"; then
    log "reusing $env_dir"
    echo "$py"
    exit 0
fi
exec 9>"$cache/.deploy-$hash.lock"
flock 9
if check_env "$env_dir"; then
    log "reusing $env_dir (built by a concurrent caller)"
    echo "$py"
    exit 0
fi

start=$(date +%s)
tmp="$cache/.tmp-deploy-$hash-$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
log "building $env_dir from $req (python $pyver); this takes a minute or two once"
"$base_python" -m venv "$tmp"
pip_log="$tmp/pip.log"
if ! "$tmp/bin/python" -m pip install --no-input -r "$req" >"$pip_log" 2>&1; then
    tail -30 "$pip_log" >&2
    die "pip install of $req failed (log above)"
fi
grep -rlI --null -F "$tmp" "$tmp/bin" 2>/dev/null | xargs -0 -r sed -i "s#$tmp#$env_dir#g"
touch "$tmp/.satgate-complete"
PYTHONPATH="$repo" "$tmp/bin/python" -c "import monai.deploy.core, holoscan, highdicom, satgate_monai" \
    || die "import check failed in the new environment $tmp (see $pip_log)"
rm -rf "$env_dir"
mv "$tmp" "$env_dir"
trap - EXIT
for old in "$cache"/deploy-*; do
    [[ -d "$old" && "$old" != "$env_dir" ]] || continue
    log "removing the environment of an older requirements file: $old"
    rm -rf "$old"
done
log "built $env_dir in $(( $(date +%s) - start )) s ($(du -sh "$env_dir" | cut -f1))"
check_env "$env_dir" || die "the environment $env_dir fails the import check after the rename"
echo "$py"
