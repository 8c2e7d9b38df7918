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

# shellcheck source=.ci/cached_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached_venv.sh"
req="$repo/satgate_monai/label/requirements-monailabel.txt"
imports="monailabel, torchvision, monai, satgate_monai, pydicom_seg"
build_note="a few minutes"

# Everything except monailabel with its dependencies; then monailabel alone with --no-deps, repeating the torch pins so
# pip cannot swap torch.
venv_install() {
    local torch_pins ml_pin
    torch_pins=$(grep -E '^(torch|torchvision)==' "$req" | tr '\n' ' ')
    ml_pin=$(grep -E '^monailabel==' "$req") || die "no 'monailabel==' line in $req"
    grep -vE '^monailabel==' "$req" >"$tmp/requirements-deps.txt"
    venv_pip "pip install of $req" -r "$tmp/requirements-deps.txt"
    # shellcheck disable=SC2086
    venv_pip "pip install --no-deps $ml_pin" --no-deps "$ml_pin" $torch_pins
    "$tmp/bin/python" -m pip check >>"$pip_log" 2>&1 || true  # monailabel's unmet optional deps (sam2...) are expected
}

cached_venv monailabel "$@"
