#!/usr/bin/env bash
# CI: the package as a user installs it. Builds the wheel from a clean copy of the working tree, installs it (not
# editable) into a second virtual environment and runs `python -m satgate_monai bundle-path` from a folder outside the
# repository. The demo itself runs in .ci/newcomer.sh, in an environment of its own (the `all` extra only, not the
# test extras this one reuses), from the README's command and from the installed sdist.
#
#   bash .ci/wheel_check.sh WORK_DIR      # with the CI environment active (python = its interpreter)
#
# The second environment reuses the active environment's installed dependencies (torch, monai, the extras) through a
# .pth line placed after its own site-packages, so nothing is downloaded or installed twice; a .pth line does not run
# the first environment's own .pth files, so its editable install of the repository stays invisible.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:?usage: bash .ci/wheel_check.sh WORK_DIR}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

echo "== wheel: building from a clean copy of the tree"
python - "$repo" "$work/src" <<'EOF'
import shutil, sys
ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                ".ruff_cache", "runs", "demo_run", "work_dirs")
shutil.copytree(sys.argv[1], sys.argv[2], symlinks=True, ignore=ignore)
EOF
python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/satgate_monai-*.whl)
echo "$wheel"

echo "== wheel: a second environment, the wheel installed into it (not editable)"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
first_site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
second_site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$first_site" > "$second_site/zz_ci_reuse_dependencies.pth"
"$py" -m pip install -q --no-deps "$wheel"
[ -d "$second_site/satgate_monai/bundles" ] && [ ! -L "$second_site/satgate_monai/bundles" ] \
  || { echo "the wheel installs no satgate_monai/bundles folder" >&2; exit 1; }

echo "== wheel: README commands from a folder outside the repository"
mkdir -p "$work/outside"
cd "$work/outside"
unset PYTHONPATH
"$py" -c "import satgate_monai, data_prep, sys
for m in (satgate_monai, data_prep):
    assert m.__file__.startswith('$second_site'), f'{m.__name__} imported from {m.__file__}, not from the wheel'
print('satgate_monai from', satgate_monai.__file__)"
bundle=$("$py" -m satgate_monai bundle-path liver_ct_sat)
echo "liver_ct_sat: $bundle"
case "$bundle" in "$second_site"/*) ;; *) echo "bundle-path gave $bundle, not a folder of the installed wheel" >&2; exit 1 ;; esac
for f in LICENSE configs/metadata.json configs/train.json configs/inference.json docs/README.md; do
  [ -f "$bundle/$f" ] || { echo "the installed bundle lacks $f" >&2; exit 1; }
done
echo "== wheel: OK"
