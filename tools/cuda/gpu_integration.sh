#!/usr/bin/env bash
# gpu_integration.sh: the one device call. Builds the kernels, runs the
# backend/cuda tests and the glm4moe CUDA tests on glm-tiny, generates the
# 47-layer synthetic file(s) and benchmarks them: the test harness
# (TestGPUBench), glmbench, and the HTTP server (TestServeBench).
#
# On the development machine first (all git-ignored, carried as .device-carry;
# build only what the chosen steps use):
#   CGO_ENABLED=1 go test -c -o .device-carry/cuda.test ./backend/cuda        # cuda
#   CGO_ENABLED=1 go test -c -o .device-carry/glm4moe.test ./model/glm4moe    # model, bench, profile
#   CGO_ENABLED=1 go build -o .device-carry/glmbench ./cmd/glmbench           # glmbench
#   CGO_ENABLED=1 go test -c -o .device-carry/glm.test ./server/glm           # serve
#   CGO_ENABLED=0 go build -o .device-carry/synth ./tools/synth               # the model files
#   mkdir -p .device-carry/shared/testdata/glm-tiny && cp ../shared/testdata/glm-tiny/{tokens.txt,glm-tiny-bf16.gguf,\
#     glm-tiny-q4_k_m.gguf,hf-logits-bf16.f32,ref-logits-q4_k_m.f32} .device-carry/shared/testdata/glm-tiny/
#
# Steps (STEPS, default "build cuda model synth bench glmbench"):
#   build     nvcc the fatbin into OUT (kernels.fatbin, kernels.sum, ptxas.log) and use it
#   cuda      backend/cuda tests (CUDA_RUN: -test.run pattern, default all)
#   model     glm4moe GPU tests on glm-tiny (MODEL_RUN, default the oracle, greedy, MMFP4 and Ops tests)
#   synth     make the synthetic files (also implied by bench, profile, glmbench, serve)
#   bench     TestGPUBench on the first file: DEPTHS (default 0,8192), PP (512), REPS (3)
#   profile   TestGPUBench's per-kernel decode breakdown, one rep, for every file
#   glmbench  glmbench over all the files in one table (GLMBENCH_ARGS, default "-fa 1 -p 512 -n 128 -r 3";
#             GLMBENCH2_ARGS: a second run, e.g. "--prompt-sizes 100k --output-tokens 16")
#   serve     TestServeBench on the first file with the seed's bar asserted (TTFT, 1 and 5 streams)
# TYPES (default "q4_k_m"): the synth weight mixes, one file each (/tmp/synth-q4km.gguf,
# /tmp/synth-mmfp4.gguf, ...); "q4_k_m mmfp4" compares the two. *_TIMEOUT per step.
# Writes OUT/{kernels.fatbin,kernels.sum,ptxas.log,build.log,test.log,bench.log,profile-*.log,glmbench.log,serve.log}.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
carry=$root/.device-carry
steps=${STEPS:-build cuda model synth bench glmbench}
has() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }
# the steps that read the synthetic files
files_needed() { has synth || has bench || has profile || has glmbench || has serve; }
nvidia-smi --query-gpu=name,memory.total,driver_version,power.draw --format=csv,noheader
files=()
for t in ${TYPES:-q4_k_m}; do files+=("/tmp/synth-${t//_/}.gguf"); done
model=${files[0]}
# The synthetic files are made once per machine (a later invocation in the
# same device call reuses them), in the background while the tests run.
if files_needed; then
	for t in ${TYPES:-q4_k_m}; do
		f=/tmp/synth-${t//_/}.gguf
		[ -s "$f" ] || (time "$carry/synth" -o "$f" --type "$t" --threads 6 -q) >"$out/synth-$t.tmp" 2>&1 &
	done
fi
if has build; then
	if ! (time "$root/tools/cuda/build_kernels.sh" "$out") >"$out/build.log" 2>&1; then
		tail -60 "$out/build.log"
		exit 1
	fi
	tail -3 "$out/build.log"
fi
[ -s "$out/kernels.fatbin" ] && export GLMRUN_CUDA_FATBIN=$out/kernels.fatbin
export GLMRUN_CUDA_REQUIRE=1 GLMRUN_SHARED=$carry/shared
if has cuda; then
	(cd "$root/backend/cuda" && timeout ${CUDA_TIMEOUT:-240} "$carry/cuda.test" -test.run "${CUDA_RUN:-.}" -test.skip TestFatbinFresh \
		-test.v -test.timeout 230s) >"$out/test.log" 2>&1
	echo "backend/cuda tests rc=$?"; grep -E "^(--- FAIL|FAIL|ok|PASS)|rel_l2 .*>|panic" "$out/test.log" | head -20
fi
if has model; then
	(cd "$root/model/glm4moe" && timeout ${MODEL_TIMEOUT:-300} "$carry/glm4moe.test" \
		-test.run "${MODEL_RUN:-TestGPUOracle|TestGPUDecodeGreedy|TestGPUMMFP4|TestOps}" -test.v -test.timeout 290s) >>"$out/test.log" 2>&1
	echo "glm4moe GPU tests rc=$?"; grep -E "CUDA |^(--- FAIL|FAIL|ok|PASS)|    --- FAIL|gpu.*go:[0-9]+:|panic" "$out/test.log" | head -40
fi
wait
for t in ${TYPES:-q4_k_m}; do
	[ -f "$out/synth-$t.tmp" ] && { echo "synth $t:"; tail -4 "$out/synth-$t.tmp"; rm -f "$out/synth-$t.tmp"; }
done
if files_needed; then ls -la "${files[@]}"; fi
if has profile; then
	for f in "${files[@]}"; do
		(cd "$root/model/glm4moe" && GLMRUN_GPU_MODEL=$f GLMRUN_GPU_REPS=1 timeout ${PROFILE_TIMEOUT:-200} "$carry/glm4moe.test" \
			-test.run TestGPUBench -test.v -test.timeout 200s) >"$out/profile-$(basename "$f" .gguf).log" 2>&1
		echo "profile $f rc=$?"; grep -E "matvec|total|tg128|pp512" "$out/profile-$(basename "$f" .gguf).log" | head -20
	done
fi
if has bench; then
	(cd "$root/model/glm4moe" && GLMRUN_GPU_PROFILE_PREFILL=1 GLMRUN_GPU_MODEL=$model GLMRUN_GPU_DEPTHS=${DEPTHS:-0,8192} GLMRUN_GPU_PP=${PP:-512} \
		GLMRUN_GPU_REPS=${REPS:-3} timeout ${BENCH_TIMEOUT:-240} "$carry/glm4moe.test" -test.run TestGPUBench -test.v \
		-test.timeout 600s) >"$out/bench${BENCH_TAG:-}.log" 2>&1
	echo "bench rc=$?"; grep -vE "^=== RUN" "$out/bench${BENCH_TAG:-}.log" | tail -${BENCH_TAIL:-60}
fi
if has glmbench; then
	all=$(IFS=,; echo "${files[*]}")
	timeout ${GLMBENCH_TIMEOUT:-300} "$carry/glmbench" -m "$all" --device cuda ${GLMBENCH_ARGS:--fa 1 -p 512 -n 128 -r 3} >"$out/glmbench.log" 2>&1
	echo "glmbench rc=$?"; tail -15 "$out/glmbench.log"
	if [ -n "${GLMBENCH2_ARGS:-}" ]; then
		timeout ${GLMBENCH2_TIMEOUT:-200} "$carry/glmbench" -m "$all" --device cuda $GLMBENCH2_ARGS >>"$out/glmbench.log" 2>&1
		echo "glmbench 2 rc=$?"; tail -15 "$out/glmbench.log"
	fi
fi
if has serve; then
	(cd "$root/server/glm" && GLM_SERVE_BENCH_MODEL=$model GLM_SERVE_BENCH_DEVICE=cuda GLM_ASSERT_THROUGHPUT=1 \
		timeout ${SERVE_TIMEOUT:-180} "$carry/glm.test" -test.run TestServeBench -test.v) >"$out/serve.log" 2>&1
	echo "serve rc=$?"; grep -vE "^=== RUN|uploading weights" "$out/serve.log" | tail -12
fi
nvidia-smi --query-gpu=power.draw,memory.used --format=csv,noheader
