# Sourced by .ci/deploy_env.sh and .ci/monailabel_env.sh: build (or reuse) one cached, hashed, locked virtual
# environment and print its python on the last line. Not a command of its own.
#
# The environment lives in "$cache/$venv_name-<hash>", where <hash> covers the requirements file and the base python's
# version. Idempotent: a complete environment with that hash is reused (a few seconds); any change to the requirements
# builds a new one. Atomic: built in a temporary folder beside it and renamed into place only after an import check
# passed, under a lock, so concurrent callers never see half an environment.
#
# The caller sets these, defines `venv_install` (installs "$req" into the new environment with venv_pip), then runs `cached_venv NAME "$@"` (NAME: folder prefix and log name, e.g. deploy):
#   req              the requirements file
#   imports          the modules a usable environment must import (comma-separated, as in `import ...`)
#   build_note       how long the first build takes, for the log ("a few minutes")
# Environment variables, with PREFIX = SATGATE_<NAME in capitals>: PREFIX_BASE_PYTHON (python used to create the venv,
# default python3), PREFIX_CACHE (cache folder, default ${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai),
# PREFIX_KEEP_OLD=1 (keep the environments of other hashes).
# It sets `repo` (the checkout, put on PYTHONPATH for the import check) when sourced.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "[${venv_name}_env] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The import check a usable environment must pass (satgate_monai comes from this checkout via PYTHONPATH).
check_env() {
    [[ -f "$1/.satgate-complete" && -x "$1/bin/python" ]] || return 1
    PYTHONPATH="$repo" "$1/bin/python" -c "import $imports" >/dev/null 2>&1
}

# venv_pip WHAT PIP-INSTALL-ARGS...: pip install into the environment being built, logged to its pip.log; on failure
# print the log's tail and die with "WHAT failed".
venv_pip() {
    local what="$1"
    shift
    if ! "$tmp/bin/python" -m pip install --no-input "$@" >>"$pip_log" 2>&1; then
        tail -30 "$pip_log" >&2
        die "$what failed (log above)"
    fi
}

cached_venv() {
    venv_name="$1"
    shift
    local var_prefix="SATGATE_${venv_name^^}"
    local base_python_var="${var_prefix}_BASE_PYTHON" cache_var="${var_prefix}_CACHE"
    local keep_old_var="${var_prefix}_KEEP_OLD"
    base_python="${!base_python_var:-python3}"
    cache="${!cache_var:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}"
    [[ -f "$req" ]] || die "requirements file not found: $req"
    command -v "$base_python" >/dev/null 2>&1 || die "base python '$base_python' not found (set $base_python_var)"
    command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is needed to build the environment safely"

    pyver="$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    hash="$( { cat "$req"; echo "python=$pyver"; } | sha256sum | cut -c1-16)"
    env_dir="$cache/$venv_name-$hash"
    py="$env_dir/bin/python"
    if [[ "${1:-}" == "--path" ]]; then
        echo "$py"
        exit 0
    fi
    [[ $# -eq 0 ]] || die "unknown argument: $1 (usage: $0 [--path])"

    mkdir -p "$cache"
    if check_env "$env_dir"; then
        log "reusing $env_dir"
        echo "$py"
        exit 0
    fi
    exec 9>"$cache/.$venv_name-$hash.lock"
    flock 9
    if check_env "$env_dir"; then  # another caller built it while we waited for the lock
        log "reusing $env_dir (built by a concurrent caller)"
        echo "$py"
        exit 0
    fi

    start=$(date +%s)
    tmp="$cache/.tmp-$venv_name-$hash-$$"
    rm -rf "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    log "building $env_dir from $req (python $pyver); this takes $build_note once"
    "$base_python" -m venv "$tmp"
    pip_log="$tmp/pip.log"
    venv_install

    # Fix the absolute paths pip/venv wrote into bin/ (shebangs, activate scripts) before the rename.
    grep -rlI --null -F "$tmp" "$tmp/bin" 2>/dev/null | xargs -0 -r sed -i "s#$tmp#$env_dir#g"
    touch "$tmp/.satgate-complete"
    PYTHONPATH="$repo" "$tmp/bin/python" -c "import $imports" \
        || die "import check failed in the new environment $tmp (see $pip_log)"

    rm -rf "$env_dir"
    mv "$tmp" "$env_dir"
    trap - EXIT
    if [[ "${!keep_old_var:-0}" != 1 ]]; then
        for old in "$cache/$venv_name"-*; do
            [[ -d "$old" && "$old" != "$env_dir" ]] || continue
            log "removing the environment of an older requirements file: $old"
            rm -rf "$old"
        done
    fi
    log "built $env_dir in $(( $(date +%s) - start )) s ($(du -sh "$env_dir" | cut -f1))"
    check_env "$env_dir" || die "the environment $env_dir fails the import check after the rename"
    echo "$py"
}
