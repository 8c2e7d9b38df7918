#!/usr/bin/env bash
# CI: the newcomer's path. README.md's first fenced bash command, run verbatim in a fresh clone of the repository with
# a fresh virtual environment that inherits nothing from CI's (no test extras): it must exit 0, print at most 30 lines
# of its own (the demo's) and end with the test Dice summary. Then, in that environment (the `all` extra only): every
# product module imports (.ci/import_modules.py), and the sdist installs into a third environment (reusing the second
# one's dependencies, no download) with no "Package would be ignored" warning, finds its bundles and runs the demo's
# quick path from a folder outside the repository.
#
#   bash .ci/newcomer.sh WORK_DIR
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:?usage: bash .ci/newcomer.sh WORK_DIR}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

cmd=$(awk '/^```bash$/ {inside = 1; next} inside && /^```/ {exit} inside && NF {print; exit}' "$repo/README.md")
[ -n "$cmd" ] || { echo "no fenced bash command found in README.md" >&2; exit 1; }
echo "== newcomer: a fresh clone, the README's first command verbatim"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
echo "+ $cmd"
# nothing of CI's environment: no active venv, no PYTHONPATH; only the local mirror's "Location ... is ignored"
# warnings are left out of the log
start=$(date +%s)
ci_venv=${VIRTUAL_ENV:-/nonexistent}
set +e
(
  unset VIRTUAL_ENV PYTHONPATH PYTHONHOME
  PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$ci_venv/bin" | paste -sd:)
  export PATH
  eval "$cmd"
) > "$work/newcomer.log" 2>&1
status=$?
set -e
grep -v "^WARNING: Location" "$work/newcomer.log" | tail -n 40
echo "== newcomer: exit status $status after $(( $(date +%s) - start )) s"
[ "$status" -eq 0 ] || { echo "the README's first command failed (exit $status)" >&2; exit 1; }
# the demo's own output: from its first line to the end
demo_lines=$(awk '/^satgate-monai demo:/ {found = 1} found' "$work/newcomer.log" | wc -l)
echo "demo printed $demo_lines lines"
[ "$demo_lines" -ge 1 ] && [ "$demo_lines" -le 30 ] || { echo "the demo printed $demo_lines lines (want 1..30)" >&2; exit 1; }
tail -n 1 "$work/newcomer.log" | grep -Eq '^Test-split Dice [0-9]\.[0-9]{3}' \
  || { echo "the README's first command does not end with the test Dice summary" >&2; exit 1; }
if grep -q "would be ignored" "$work/newcomer.log"; then echo "setuptools warned 'Package would be ignored'" >&2; exit 1; fi

echo "== newcomer: every product module imports with the all extra only"
# shellcheck disable=SC1091
. .venv/bin/activate
python "$repo/.ci/import_modules.py"

echo "== newcomer: the sdist, installed into a third environment (the second's dependencies reused)"
python -c "from setuptools import build_meta as b; print(b.build_sdist('$work/sdist'))" > "$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log" >&2; exit 1; }
sdist=$(ls "$work"/sdist/satgate_monai-*.tar.gz)
python3 -m venv "$work/venv3"
first_site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
third_site=$("$work/venv3/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$first_site" > "$third_site/zz_ci_reuse_dependencies.pth"
deactivate
"$work/venv3/bin/python" -m pip install -v --no-deps "$sdist" > "$work/sdist_install.log" 2>&1 \
  || { tail -n 40 "$work/sdist_install.log" >&2; exit 1; }
if grep -q "would be ignored" "$work/sdist.log" "$work/sdist_install.log"; then
  echo "setuptools warned 'Package would be ignored' building or installing the sdist" >&2; exit 1
fi
mkdir -p "$work/outside"
cd "$work/outside"
bundle=$("$work/venv3/bin/python" -m satgate_monai bundle-path liver_ct_sat)
echo "liver_ct_sat: $bundle"
case "$bundle" in "$third_site"/*) ;; *) echo "bundle-path gave $bundle, not the installed sdist's" >&2; exit 1 ;; esac
ls "$bundle/configs"
for f in LICENSE configs/metadata.json configs/train.json configs/inference.json docs/README.md; do
  [ -f "$bundle/$f" ] || { echo "the installed sdist's bundle lacks $f" >&2; exit 1; }
done
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$work/venv3/bin/python" -m satgate_monai.demo --task skin --out demo \
  --epochs 1 --cases 8 | tail -n 1
echo "== newcomer: OK"
