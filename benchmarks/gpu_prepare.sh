#!/usr/bin/env bash
# Before the device call (on the CPU machine, from the repository root): what benchmarks/gpu_run.sh
# needs that the bare H200 image lacks, in the two git-ignored folders the call carries.
#   .whl/          keras, namex and optree wheels for the device's Python (3.12, x86-64): the H200
#                  image has JAX and keras' other needs, but no Keras
#   .device-data/  brain-tumor-mri.tar: ../shared/data/brain-tumor-mri (../shared does not travel)
# Then prints what would travel, against the 64 MiB limit.
#   bash benchmarks/gpu_prepare.sh            (PYTHON: .venv/bin/python; DATA: the dataset folder)
set -euo pipefail

PY=${PYTHON:-.venv/bin/python}
DATA=${DATA:-../shared/data/brain-tumor-mri}
LIMIT=$(( 64 * 1024 * 1024 ))

# The versions tested here, so the device runs what the CPU rehearsal ran.
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  "keras==$(version keras)" "namex==$(version namex)" "optree==$(version optree)"
ls .whl

[ -d "$DATA" ] || { echo "no dataset at $DATA (set DATA)" >&2; exit 1; }
mkdir -p .device-data
# Plain tar: the JPEGs do not compress, and the device unpacks it faster.
tar -cf .device-data/brain-tumor-mri.tar -C "$(dirname "$DATA")" "$(basename "$DATA")"

# Tracked and untracked-not-ignored files; du skips (and complains about) tracked files deleted here.
tree=$( (git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null || true) \
  | tail -1 | cut -f1)
carried=$(du -cb .whl .device-data | tail -1 | cut -f1)
total=$(( tree + carried ))
echo "travels: working tree $(( tree / 1024 )) KiB + .whl and .device-data $(( carried / 1024 )) KiB" \
     "= $(( total / 1024 / 1024 )) MiB of 64 MiB"
[ "$total" -lt "$LIMIT" ] || { echo "over the device's 64 MiB limit" >&2; exit 1; }
