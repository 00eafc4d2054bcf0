#!/usr/bin/env bash
# Installs NVRTC, the CUDA headers and ptxas from PyPI wheels (DESIGN.md, decision 5) into an
# ignored cache, so kernels compile and ptxas reports registers/spills on machines with no GPU
# and no CUDA toolkit. Idempotent; prints the folder to put on LD_LIBRARY_PATH and PATH.
#   usage: scripts/cuda-toolchain.sh            (installs into .cache/cuda-toolchain)
#   then:  export LD_LIBRARY_PATH=$PWD/.cache/cuda-toolchain/lib:$LD_LIBRARY_PATH
set -euo pipefail
cd "$(dirname "$0")/.."
root=.cache/cuda-toolchain
stamp=$root/.complete-13.0
if [[ -f $stamp ]]; then echo "$root"; exit 0; fi
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "cuda-toolchain: fetching NVRTC 13.0, CUDA headers and ptxas wheels from PyPI ..." >&2
"$python" -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
  'nvidia-cuda-nvrtc==13.0.*' 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-nvcc==13.0.*' -d "$tmp" >&2
rm -rf "$root" && mkdir -p "$root"
for w in "$tmp"/*.whl; do
  "$python" - "$w" "$tmp/x" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
keep = [n for n in z.namelist() if n.startswith("nvidia/cu13/") and ("/lib/" in n or "/include/" in n or n.endswith("/bin/ptxas"))]
for n in keep: z.extract(n, sys.argv[2])
PY
done
cp -r "$tmp/x/nvidia/cu13/"* "$root/"
chmod +x "$root/bin/ptxas"
ls "$root/lib"/libnvrtc.so* >/dev/null
touch "$stamp"
echo "$root"
