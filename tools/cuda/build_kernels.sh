#!/usr/bin/env bash
# build_kernels.sh: compile backend/cuda/kernels/*.cu into one fatbin and
# write the source checksum beside it.
#
# Usage: tools/cuda/build_kernels.sh [OUTDIR]
#   OUTDIR defaults to backend/cuda/kernels (the committed, embedded copy).
#   On the lent GPU machine run it with OUTDIR=$OUT, then copy
#   kernels.fatbin and kernels.sum from the run's files into
#   backend/cuda/kernels/ and commit them together with the sources.
#
# Needs nvcc (CUDA 12.x or 13.x). Output: SASS for sm_80, sm_86, sm_89, sm_90
# and compute_90 PTX (JIT-compiled by newer drivers for newer GPUs), plus
# OUTDIR/ptxas.log with the sm_90 resource report (registers, spills, shared
# memory) of every kernel.
#
# kernels.sum is the SHA-256 of the concatenated *.cu and *.cuh files in
# byte-wise name order; backend/cuda's sum_test.go recomputes it and fails
# with "stale fatbin" when the sources changed after the last build.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/backend/cuda/kernels
out=${1:-$src}
mkdir -p "$out"
out=$(cd "$out" && pwd)

NVCC=${NVCC:-nvcc}
"$NVCC" --version | tail -n 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One translation unit so the module is one fatbin (kernels are extern "C").
(cd "$src" && ls -- *.cu | LC_ALL=C sort) | while read -r f; do
	printf '#include "%s/%s"\n' "$src" "$f"
done >"$tmp/all.cu"

flags=(-O3 -std=c++17 -I"$src")
archs=(
	-gencode=arch=compute_80,code=sm_80
	-gencode=arch=compute_86,code=sm_86
	-gencode=arch=compute_89,code=sm_89
	-gencode=arch=compute_90,code=sm_90
	-gencode=arch=compute_90,code=compute_90
)

"$NVCC" -cubin -arch=sm_90 "${flags[@]}" -Xptxas -v -o "$tmp/sm90.cubin" "$tmp/all.cu" 2>"$out/ptxas.log" ||
	{ cat "$out/ptxas.log"; exit 1; }
"$NVCC" -fatbin "${flags[@]}" "${archs[@]}" -o "$out/kernels.fatbin" "$tmp/all.cu"

(cd "$src" && ls -- *.cu *.cuh | LC_ALL=C sort | xargs cat) | sha256sum | cut -d' ' -f1 >"$out/kernels.sum"
echo "wrote $out/kernels.fatbin ($(stat -c %s "$out/kernels.fatbin") bytes), kernels.sum $(cat "$out/kernels.sum")"
