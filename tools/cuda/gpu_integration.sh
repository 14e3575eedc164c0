#!/usr/bin/env bash
# gpu_integration.sh: one device call that builds the kernels, runs the
# backend/cuda tests, the glm4moe CUDA tests on glm-tiny, generates the
# 47-layer synthetic Q4_K_M file and benchmarks it (test harness + glmbench).
#
# On the development machine first (all git-ignored, carried as .device-carry):
#   CGO_ENABLED=1 go test -c -o .device-carry/cuda.test ./backend/cuda
#   CGO_ENABLED=1 go test -c -o .device-carry/glm4moe.test ./model/glm4moe
#   CGO_ENABLED=1 go build -o .device-carry/glmbench ./cmd/glmbench
#   CGO_ENABLED=0 go build -o .device-carry/synth ./tools/synth
#   mkdir -p .device-carry/shared/testdata/glm-tiny && cp ../shared/testdata/glm-tiny/{tokens.txt,glm-tiny-bf16.gguf,\
#     glm-tiny-q4_k_m.gguf,hf-logits-bf16.f32,ref-logits-q4_k_m.f32} .device-carry/shared/testdata/glm-tiny/
# Knobs (environment): STEPS (default "build cuda model synth bench glmbench"),
# DEPTHS (GLMRUN_GPU_DEPTHS, default 0,8192), PP (default 512), REPS (3),
# GLMBENCH_ARGS (default "-fa 1 -p 512 -n 128 -r 3"), GLMBENCH2_ARGS (a second glmbench run, e.g.
# "--prompt-sizes 100k --output-tokens 16"), *_TIMEOUT per step.
# Writes OUT/{kernels.fatbin,kernels.sum,ptxas.log,build.log,test.log,bench.log,glmbench.log}.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
carry=$root/.device-carry
steps=${STEPS:-build cuda model synth bench glmbench}
has() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version,power.draw --format=csv,noheader
model=/tmp/synth-q4km.gguf
# the synthetic file is made once per machine (a second invocation in the
# same device call reuses it)
if (has synth || has bench) && [ ! -s "$model" ]; then
	(time "$carry/synth" -o "$model" -q) >"$out/synth.tmp" 2>&1 &
	synth_pid=$!
fi
if has build; then
	if ! (time "$root/tools/cuda/build_kernels.sh" "$out") >"$out/build.log" 2>&1; then
		tail -60 "$out/build.log"
		exit 1
	fi
	tail -3 "$out/build.log"
fi
export GLMRUN_CUDA_FATBIN=$out/kernels.fatbin GLMRUN_CUDA_REQUIRE=1 GLMRUN_SHARED=$carry/shared
if has cuda; then
	(cd "$root/backend/cuda" && timeout 240 "$carry/cuda.test" -test.skip TestFatbinFresh -test.timeout 230s) >"$out/test.log" 2>&1
	echo "backend/cuda tests rc=$?"; grep -E "^(--- FAIL|FAIL|ok|PASS)|rel_l2 .*>|panic" "$out/test.log" | head -20
fi
if has model; then
	(cd "$root/model/glm4moe" && timeout 240 "$carry/glm4moe.test" -test.run 'TestGPUOracle|TestGPUDecodeGreedy' -test.v -test.timeout 230s) >>"$out/test.log" 2>&1
	echo "glm4moe GPU tests rc=$?"; grep -E "CUDA |^(--- FAIL|FAIL|ok|PASS)|    --- FAIL|gpu.*go:[0-9]+:|panic" "$out/test.log" | head -40
fi
if [ -n "${synth_pid:-}" ]; then
	wait "$synth_pid"; echo "synth rc=$?"; tail -4 "$out/synth.tmp"; ls -la "$model"
fi
if has bench; then
	(cd "$root/model/glm4moe" && GLMRUN_GPU_PROFILE_PREFILL=1 GLMRUN_GPU_MODEL=$model GLMRUN_GPU_DEPTHS=${DEPTHS:-0,8192} GLMRUN_GPU_PP=${PP:-512} \
		GLMRUN_GPU_REPS=${REPS:-3} timeout ${BENCH_TIMEOUT:-240} "$carry/glm4moe.test" -test.run TestGPUBench -test.v \
		-test.timeout 600s) >"$out/bench${BENCH_TAG:-}.log" 2>&1
	echo "bench rc=$?"; grep -vE "^=== RUN" "$out/bench${BENCH_TAG:-}.log" | tail -${BENCH_TAIL:-60}
fi
if has glmbench; then
	timeout ${GLMBENCH_TIMEOUT:-150} "$carry/glmbench" -m "$model" --device cuda ${GLMBENCH_ARGS:--fa 1 -p 512 -n 128 -r 3} >"$out/glmbench.log" 2>&1
	echo "glmbench rc=$?"; tail -15 "$out/glmbench.log"
	if [ -n "${GLMBENCH2_ARGS:-}" ]; then
		timeout ${GLMBENCH2_TIMEOUT:-200} "$carry/glmbench" -m "$model" --device cuda $GLMBENCH2_ARGS >>"$out/glmbench.log" 2>&1
		echo "glmbench 2 rc=$?"; tail -15 "$out/glmbench.log"
	fi
fi
nvidia-smi --query-gpu=power.draw,memory.used --format=csv,noheader
rm -f "$out/synth.tmp"
