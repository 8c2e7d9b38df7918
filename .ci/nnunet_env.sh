#!/usr/bin/env bash
# Build (or reuse) the separate nnU-Net environment of satgate-monai and print its python on the last line.
#
#   bash .ci/nnunet_env.sh            # -> .../satgate-monai/nnunet-<hash>/bin/python (and nnUNetv2_* beside it)
#   bash .ci/nnunet_env.sh --path     # print where that python is (or will be), build nothing
#
# nnU-Net v2's trainer lookup imports timm and so torchvision, which has no CPU build on PyPI and does not import beside
# the project's CPU torch; nnU-Net's own commands therefore run in their own virtual environment, built from
# satgate_monai/nnunet/requirements-nnunet.txt (a matching torch/torchvision pair, nnunetv2, MONAI) and cached OUTSIDE
# the repository in ${SATGATE_NNUNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satgate-monai}/nnunet-<hash>. Idempotent,
# atomic and locked as the other cached environments (.ci/cached_venv.sh). satgate_monai is NOT installed into it:
# nnU-Net imports the network class named in the plans from the checkout on PYTHONPATH.
#
# Environment variables: SATGATE_NNUNET_BASE_PYTHON, SATGATE_NNUNET_CACHE, SATGATE_NNUNET_KEEP_OLD=1.
set -euo pipefail

# shellcheck source=.ci/cached_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/cached_venv.sh"
req="$repo/satgate_monai/nnunet/requirements-nnunet.txt"
imports="nnunetv2, dynamic_network_architectures, timm, torchvision, monai, satgate_monai"
build_note="a few minutes"

venv_install() { venv_pip "pip install of $req" -r "$req"; }

cached_venv nnunet "$@"
