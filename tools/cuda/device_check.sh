#!/usr/bin/env bash
# device_check.sh: build the kernels and run the backend/cuda GPU tests and
# benchmark in one go, on the GPU machine.
#
# On the development machine first build the test binary (needs cgo, no CUDA):
#   CGO_ENABLED=1 go test -c -o .device-carry/cuda.test ./backend/cuda
# then run this script through the device tool with .device-carry carried:
#   tools/cuda/device_check.sh            (OUT defaults to $OUT, else ./out)
# It writes OUT/{kernels.fatbin,kernels.sum,ptxas.log,build.log,test.log}.
# The tests load the fresh fatbin through GLMRUN_CUDA_FATBIN, so kernels can
# be checked before the embedded copy is replaced; copy kernels.fatbin and
# kernels.sum into backend/cuda/kernels/ afterwards and commit them with the
# sources. Set BENCH=0 to skip the timing run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
test -x "$root/.device-carry/cuda.test" || { echo "missing .device-carry/cuda.test (build it with go test -c)"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
(time "$root/tools/cuda/build_kernels.sh" "$out") 2>&1 | tee "$out/build.log"
cd "$root/backend/cuda"
bench=1
[ "${BENCH:-1}" = 0 ] && bench=
GLMRUN_CUDA_FATBIN=$out/kernels.fatbin GLMRUN_CUDA_REQUIRE=1 GLMRUN_CUDA_BENCH=$bench \
	timeout 300 "$root/.device-carry/cuda.test" -test.v -test.skip TestFatbinFresh -test.timeout 290s 2>&1 |
	tee "$out/test.log" | grep -v -e '^=== RUN' -e 'seed '
