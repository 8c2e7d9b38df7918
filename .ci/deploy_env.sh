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
# SATGATE_DEPLOY_CACHE (cache folder), SATGATE_DEPLOY_KEEP_OLD=1 (keep environments of other hashes).
set -euo pipefail

# shellcheck source=.ci/cached_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached_venv.sh"
req="$repo/deploy/requirements-deploy.txt"
imports="monai.deploy.core, holoscan, highdicom, satgate_monai"
build_note="a minute or two"

venv_install() { venv_pip "pip install of $req" -r "$req"; }

cached_venv deploy "$@"
