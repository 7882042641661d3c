#!/usr/bin/env bash
# The GPU measurements of chapter 9, in phases that fit the device tool's calls (see benchmarks/README.md).
# Run from the repository root on a GPU machine, with the folders prepared by ../shared/tools/gpu-wheels.sh peer
# (.gpu/course, .gpu/bnb, .gpu/peer); results go to $OUT (default benchmarks/results).
#
#   bash benchmarks/gpu_session.sh install        # both stacks into /tmp/site-* (/tmp is kept between calls)
#   bash benchmarks/gpu_session.sh qwen           # course vs Unsloth, Qwen2.5-7B shape, every workload
#   bash benchmarks/gpu_session.sh diag           # a profiled step of each recipe, with the callers of each sync
#   bash benchmarks/gpu_session.sh explore        # profiled: Qwen 2048x2 and Mistral 4096x1
#   bash benchmarks/gpu_session.sh edge           # Mistral's course data; its 4096x1 with cuDNN attention; the plan's GPU edge
#   bash benchmarks/gpu_session.sh lab            # the lab end to end under the cap, then resumed, on both 7B shapes
#   bash benchmarks/gpu_session.sh vistral        # the lab alone on the Mistral/Vistral shape
#   bash benchmarks/gpu_session.sh small          # profiled: Mistral 1024x2, course and Unsloth
#   bash benchmarks/gpu_session.sh mistral        # course vs Unsloth, Mistral/Vistral shape, and the course data
#   bash benchmarks/gpu_session.sh boundary       # the plan's edge: a shape it accepts and one it refuses, run anyway
#   bash benchmarks/gpu_session.sh smol GGUF      # SmolLM2's real weights in fp16; the sm_75 compile check
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 UNSLOTH_DISABLE_STATISTICS=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-benchmarks/results}
G=$PWD/.gpu
K=/tmp  # kept between calls on a warm machine; the repository copy's untracked folders are not
export COURSE_PYTHONPATH="$K/site-course:$K/bnb:$PWD/src"
export PEER_PYTHONPATH="$K/site-peer:$K/peersite:$K/bnb:$PWD/src"
export PYTHONPATH=$COURSE_PYTHONPATH
LEVERS=${LEVERS:-'{}'}  # the course row's profile changes ({}: the t4 profile as the lab uses it)
# the t4 recipe without the fused LoRA sum and expandable segments (as in call C2)
C2='{"lora_fused_sum": false, "expandable_segments": false}'
# when a phase's first course row failed (a new lever broken on the GPU), its later rows run the C2 levers
ok_or_c2() { python3 -c "import json,sys; r=json.load(open('$OUT/peers.json'))['runs'][-$1]; sys.exit(r.get('status')!='ok')" \
  || { echo "the course row failed: the rest runs the C2 levers"; LEVERS=$C2; }; }
pipi() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$@"; }
seed() { [ -f "$OUT/$1" ] || { [ -f "benchmarks/results/$1" ] && cp "benchmarks/results/$1" "$OUT/$1"; }; }
peers() { python3 benchmarks/peers.py --out "$OUT/peers.json" --tag "$PHASE" "$@"; }
mkdir -p "$OUT" "$K/models"

PHASE=${1:-}
case "$PHASE" in
  install)
    [ -d "$K/site-course" ] || pipi "$K/site-course" "$G"/course/*.whl || exit 1
    [ -d "$K/bnb" ] || cp -r "$G/bnb" "$K/bnb"
    if [ -d "$G/peer" ]; then
      [ -d "$K/site-peer" ] || pipi "$K/site-peer" "$G"/peer/whl/*.whl || exit 1
      [ -d "$K/peersite" ] || cp -r "$G/peer/site" "$K/peersite"
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    ;;
  qwen)  # every Qwen2.5-7B-shape workload, course vs Unsloth; then the C2 levers at 2048x2 (the new levers' effect)
    peers --families qwen --model-dir "$K/models/qwen" --shapes 2048x2 --recipes course,unsloth --workloads random --set "$LEVERS"
    ok_or_c2 2
    peers --families qwen --model-dir "$K/models/qwen" --shapes 1024x2,4096x1 --recipes course,unsloth --workloads random --set "$LEVERS"
    peers --families qwen --model-dir "$K/models/qwen" --data-shapes 1024x2 --recipes course,unsloth --workloads course-data --set "$LEVERS" --data-steps 10
    peers --families qwen --model-dir "$K/models/qwen" --shapes 2048x2 --recipes course --workloads random --set "$C2"
    ;;
  diag)  # where a step goes: torch.profiler and the Python callers of each host-device sync, each row's last step
    peers --families qwen --model-dir "$K/models/qwen" --shapes 2048x2 --recipes course,unsloth --workloads random --set "$LEVERS" --steps 6 --profile
    peers --families qwen --model-dir "$K/models/qwen" --data-shapes 1024x2 --recipes course,unsloth --workloads course-data --set "$LEVERS" --data-steps 11 --profile
    ;;
  explore)  # where the step goes now (profiled), Qwen 2048x2 and Mistral 4096x1 (call E1, which also ran the dropped
            # side-stream offload rows)
    peers --families qwen --model-dir "$K/models/qwen" --shapes 2048x2 --recipes course,unsloth --workloads random --set "$LEVERS" --steps 6 --profile
    peers --families mistral --model-dir "$K/models/mistral" --shapes 4096x1 --recipes course,unsloth --workloads random --set "$LEVERS" --steps 6 --profile
    ;;
  edge)  # Mistral's course-data row, then the plan's GPU edge at batch 2 (Qwen shape): 16384 x 2 ran in call D3
    peers --families mistral --model-dir "$K/models/mistral" --data-shapes 1024x2 --workloads course-data --recipes course,unsloth --set "$LEVERS" --data-steps 10
    peers --families mistral --model-dir "$K/models/mistral" --shapes 4096x1 --recipes course --workloads random --set '{"sdpa_cudnn": true}'
    peers --families qwen --model-dir "$K/models/qwen" --shapes 17408x2,18432x2 --recipes course --workloads random --set "$LEVERS" --steps 2
    ;;
  lab)  # the lab end to end (evaluations, training, saving, reloading; then a resume) on both 7B shapes
    python3 benchmarks/lab_gpu.py --profile t4 --family qwen --model-dir "$K/models/qwen" --out "$OUT/lab_gpu_qwen.json"
    python3 benchmarks/lab_gpu.py --profile t4-vistral --family mistral --model-dir "$K/models/mistral" --out "$OUT/lab_gpu_vistral.json"
    ;;
  vistral)  # the lab on the Mistral/Vistral shape alone (call E3 ran out of time after its training)
    python3 benchmarks/lab_gpu.py --profile t4-vistral --family mistral --model-dir "$K/models/mistral" --out "$OUT/lab_gpu_vistral.json"
    ;;
  small)  # profiled: Mistral 1024x2, the widest gap to Unsloth (0.75x in call D3)
    peers --families mistral --model-dir "$K/models/mistral" --shapes 1024x2 --recipes course,unsloth --workloads random --set "$LEVERS" --steps 6 --profile
    ;;
  mistral)
    peers --families mistral --model-dir "$K/models/mistral" --shapes 1024x2,2048x2,4096x1 --data-shapes 1024x2 --workloads random,course-data --recipes course,unsloth --set "$LEVERS" --data-steps 10 --budget-s ${BUDGET:-420}
    ;;
  boundary)  # the memory plan's edge, Qwen2.5-7B shape: 8192 x 2 is planned to fit, 16384 x 2 is refused
    peers --families qwen --model-dir "$K/models/qwen" --shapes 8192x2,16384x2 --recipes course --workloads random --set "$LEVERS" --steps 2
    ;;
  smol)
    gguf=${2:?the SmolLM2 GGUF file}
    python3 benchmarks/smollm2_fp16_gpu.py --gguf "$gguf" --model-dir "$K/models/smollm2" --out "$OUT/smollm2_fp16.json"
    seed sm75.json
    python3 benchmarks/sm75_check.py --model-dir "$K/models/qwen" --out "$OUT/sm75.json" --set '{"use_liger_kernel": true}'
    ;;
  *) echo "usage: bash benchmarks/gpu_session.sh install|qwen|diag|explore|edge|lab|vistral|small|mistral|boundary|smol GGUF" >&2; exit 2 ;;
esac
