#!/usr/bin/env bash
# prefill_ab.sh: one device call that builds and tests the kernels
# (gpu_integration.sh steps build, cuda, model, synth), then for the deep
# prefill attention: the kernel bench (TestBenchMLAPrefill: variants x
# split counts, 512 tokens at depth 32768), an Nsight Compute profile of
# the two prefill kernels, and TestGPUBench of the default against the
# variant named by AB_ENV (environment assignments, e.g.
# "GLMRUN_CUDA_MLA_SK=1 GLMRUN_CUDA_MLA_WAVES=1").
# Carry .device-carry as gpu_integration.sh's header says.
# Knobs: AB_ENV, BASE_DEPTHS (32768), BASE_PP (512), AB_DEPTHS (0,32768),
# AB_PP (512,10240), NCU=0 skips the profile.
# Writes OUT/{kernels.fatbin,kernels.sum,ptxas.log,test.log (build log
# appended),bench.log (default),bench_ab.log,extra.log (kernel bench, ncu)}.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
carry=$root/.device-carry
STEPS="build cuda model synth" bash "$root/tools/cuda/gpu_integration.sh" || exit 1
cat "$out/build.log" >>"$out/test.log" && rm -f "$out/build.log"
export GLMRUN_CUDA_FATBIN=$out/kernels.fatbin GLMRUN_CUDA_REQUIRE=1 GLMRUN_SHARED=$carry/shared
cd "$root/backend/cuda" || exit 1
GLMRUN_CUDA_BENCH_PREFILL=1 timeout 120 "$carry/cuda.test" -test.run 'TestBenchMLAPrefill$' -test.v >"$out/extra.log" 2>&1
echo "kernel bench rc=$?"; grep -E "mla prefill|rel_l2|FAIL|picked" "$out/extra.log"
if [ "${NCU:-1}" != 0 ]; then
	GLMRUN_CUDA_BENCH_PREFILL=ncu timeout 240 ncu --clock-control none --set full -k regex:mla_prefill -c ${NCU_COUNT:-3} \
		-o /tmp/prof "$carry/cuda.test" -test.run 'TestBenchMLAPrefill$' >/tmp/ncu.out 2>&1
	echo "ncu rc=$?"; tail -3 /tmp/ncu.out
	{
		echo "==== ncu run"; cat /tmp/ncu.out
		echo "==== ncu details"; ncu --import /tmp/prof.ncu-rep --page details
		echo "==== ncu raw (stall, pipe, shared)"
		ncu --import /tmp/prof.ncu-rep --page raw | grep -E "Kernel Name|mla_prefill|stall|pipe_tensor|inst_executed_pipe|shared|l1tex__data_bank|sm__throughput|dram__throughput|lts__t_sectors_srcunit_tex_op_read.sum |launch__|smsp__cycles_active|sm__cycles_elapsed.avg "
	} >>"$out/extra.log" 2>&1
fi
cd "$root" || exit 1
DEPTHS=${BASE_DEPTHS:-32768} PP=${BASE_PP:-512} STEPS=bench BENCH_TAIL=${BASE_TAIL:-12} bash tools/cuda/gpu_integration.sh
env ${AB_ENV:-} DEPTHS=${AB_DEPTHS:-0,32768} PP=${AB_PP:-512,10240} STEPS=bench BENCH_TAG=_ab BENCH_TAIL=14 \
	bash tools/cuda/gpu_integration.sh
