#!/usr/bin/env bash
# mmfp4_ab.sh: one device call for issue #8: builds the kernels, runs the
# backend/cuda tests and the glm4moe CUDA tests (TestGPUMMFP4 included),
# generates the 47-layer synthetic file twice (Q4_K_M and MMFP4, same seed)
# and benchmarks both in one glmbench run.
#
# On the development machine first (git-ignored, carried as .device-carry):
#   CGO_ENABLED=1 go test -c -o .device-carry/cuda.test ./backend/cuda
#   CGO_ENABLED=1 go test -c -o .device-carry/glm4moe.test ./model/glm4moe
#   CGO_ENABLED=1 go build -o .device-carry/glmbench ./cmd/glmbench
#   CGO_ENABLED=0 go build -o .device-carry/synth ./tools/synth
#   mkdir -p .device-carry/shared/testdata/glm-tiny && cp ../shared/testdata/glm-tiny/{tokens.txt,glm-tiny-bf16.gguf,\
#     glm-tiny-q4_k_m.gguf,hf-logits-bf16.f32,ref-logits-q4_k_m.f32} .device-carry/shared/testdata/glm-tiny/
# Knobs (environment): STEPS (default "build cuda model bench"; "profile"
# adds TestGPUBench's per-kernel decode breakdown of both files), CUDA_RUN
# (-test.run pattern for backend/cuda, default all), MODEL_RUN (the same for
# model/glm4moe), GLMBENCH_ARGS (default
# "-fa 1 -p 512 -n 128 -r 3").
# Writes OUT/{kernels.fatbin,kernels.sum,ptxas.log,build.log,test.log,glmbench.log}.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
carry=$root/.device-carry
steps=${STEPS:-build cuda model bench}
has() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
q4=/tmp/synth-q4km.gguf mm=/tmp/synth-mmfp4.gguf
if has bench || has profile; then
	for f in "$q4:q4_k_m" "$mm:mmfp4"; do
		[ -s "${f%%:*}" ] || "$carry/synth" -o "${f%%:*}" --type "${f##*:}" --threads 6 -q &
	done
fi
if has build; then
	if ! (time "$root/tools/cuda/build_kernels.sh" "$out") >"$out/build.log" 2>&1; then
		tail -60 "$out/build.log"
		exit 1
	fi
	tail -3 "$out/build.log"
	export GLMRUN_CUDA_FATBIN=$out/kernels.fatbin
fi
export GLMRUN_CUDA_REQUIRE=1 GLMRUN_SHARED=$carry/shared
if has cuda; then
	(cd "$root/backend/cuda" && timeout 240 "$carry/cuda.test" -test.run "${CUDA_RUN:-.}" -test.skip TestFatbinFresh -test.v -test.timeout 230s) >"$out/test.log" 2>&1
	echo "backend/cuda tests rc=$?"; grep -E "^(--- FAIL|FAIL|ok|PASS)|mmfp4|panic" "$out/test.log" | head -30
fi
if has model; then
	(cd "$root/model/glm4moe" && timeout 300 "$carry/glm4moe.test" -test.run "${MODEL_RUN:-TestGPUOracle|TestGPUDecodeGreedy|TestGPUMMFP4|TestOps}" -test.v -test.timeout 290s) >>"$out/test.log" 2>&1
	echo "glm4moe GPU tests rc=$?"; grep -E "CUDA |^(--- FAIL|FAIL|ok|PASS)|    --- FAIL|gpu.*go:[0-9]+:|panic" "$out/test.log" | head -40
fi
if has profile; then
	wait
	for f in "$q4" "$mm"; do
		(cd "$root/model/glm4moe" && GLMRUN_GPU_MODEL=$f GLMRUN_GPU_REPS=1 timeout 200 "$carry/glm4moe.test" -test.run TestGPUBench -test.v \
			-test.timeout 200s) >"$out/profile-$(basename "$f" .gguf).log" 2>&1
		echo "profile $f rc=$?"; grep -E "matvec|total|tg128|pp512" "$out/profile-$(basename "$f" .gguf).log" | head -20
	done
fi
if has bench; then
	wait
	ls -la "$q4" "$mm"
	timeout ${GLMBENCH_TIMEOUT:-300} "$carry/glmbench" -m "$q4,$mm" --device cuda ${GLMBENCH_ARGS:--fa 1 -p 512 -n 128 -r 3} >"$out/glmbench.log" 2>&1
	echo "glmbench rc=$?"; tail -12 "$out/glmbench.log"
fi
