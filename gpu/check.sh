#!/usr/bin/env bash
# The checks of twinflow's GPU-host Python on a machine with a GPU, in at most 10 minutes:
#   bash gpu/check.sh [OUT_DIR]
# 1. the Twin reward and the balanced sampler (pytest, the same tables CI runs);
# 2. the toy Qwen2.5-VL (gpu/toy_qwen2_5_vl.py: random weights, a byte-level tokenizer, the
#    Qwen2-VL processor) built and loaded;
# 3. its forward and backward pass and a few supervised steps on the GPU
#    (gpu/toy_sft_steps.py --device cuda: the loss falls, the vision tower gets gradients),
#    then the same on a bigger batch in bf16 for the time per step;
# 4. DreamBooth on a toy Stable Diffusion (gpu/toy_stable_diffusion.py: random weights, a
#    CLIP tokenizer built here): gpu/dreambooth_check.py trains LoRA for 50 steps in fp16 on
#    two instances through gpu/dreambooth.py, draws 5 images each, loads the adapter back on
#    the device and draws with it, and runs a short full fine-tune with prior preservation.
# 5. probe/encoder's feature extraction through torch (gpu/probe_features.py on the toy
#    Qwen2.5-VL's vision tower, bf16 on the GPU): a raw-RGB image and the same pixels as PNG
#    give the same row, repeat runs the same bytes.
# Needs Python with torch, transformers and pytest (PYTHON=... to pick one), and for step 4
# diffusers 0.39.0, accelerate and peft; nothing is downloaded. A machine without diffusers
# takes it from a folder of wheels carried in: WHEELS=DIR (pip install --no-deps from it). Each step's result is a JSON line in OUT_DIR/check.jsonl; the exit code is the
# number of steps that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# DEVICE=cpu runs the same steps without a GPU (slower; a smoke test of this script).
DEVICE=${DEVICE:-cuda}
export DEVICE
# On a shared CPU, torch's threads fight each other (up to 15x slower than one thread under load).
[ "$DEVICE" = cpu ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$out/hf" PYTHONDONTWRITEBYTECODE=1
failed=0
step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name"
  if timeout 240 "$@" >"$out/$name.log" 2>&1; then status=ok; else status=failed; failed=$((failed + 1)); fi
  tail -n 3 "$out/$name.log"
  printf '{"step": "%s", "status": "%s", "seconds": %d}\n' "$name" "$status" $((SECONDS - t0)) >>"$out/check.jsonl"
}
"$PY" - <<'PY' | tee "$out/device.json"
import json, torch
print(json.dumps({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                  "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))
PY
step reward-and-sampler "$PY" -m pytest -q -p no:cacheprovider test/python/test_twin_reward.py test/python/test_twin_sampler.py
step toy-model "$PY" gpu/toy_qwen2_5_vl.py "$out/toy"
step sft-steps "$PY" gpu/toy_sft_steps.py "$out/toy" --device "$DEVICE" --steps 30
step sft-steps-bf16 "$PY" - "$out/toy" <<'PY'
import os, sys, json, time, torch
sys.path.insert(0, "gpu")
dev = os.environ["DEVICE"]
sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
from toy_sft_steps import batch
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
model_dir = sys.argv[1]
processor = AutoProcessor.from_pretrained(model_dir)
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.bfloat16).to(dev).train()
data = {k: v.to(dev) for k, v in batch(processor, 32 if dev.startswith("cuda") else 4).items()}
optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
losses = []
for i in range(25 if dev.startswith("cuda") else 8):
    if i == 5:
        sync(); t0 = time.perf_counter()
    optim.zero_grad(); loss = model(**data).loss; loss.backward(); optim.step(); losses.append(float(loss.detach()))
sync()
print(json.dumps({"pairs": len(data["input_ids"]), "seconds_per_step": (time.perf_counter() - t0) / (len(losses) - 5), "first_loss": losses[0], "last_loss": losses[-1],
                  "max_memory_mb": torch.cuda.max_memory_allocated() // 2**20 if dev.startswith("cuda") else None}))
sys.exit(0 if losses[-1] < losses[0] else 1)
PY
if ! "$PY" -c 'import diffusers' 2>/dev/null && [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install --quiet --no-deps --no-index --find-links "$WHEELS" diffusers >"$out/wheels.log" 2>&1 || true
fi
step toy-sd "$PY" gpu/toy_stable_diffusion.py "$out/toy-sd"
step dreambooth "$PY" gpu/dreambooth_check.py "$out/toy-sd" "$out/dreambooth" --device "$DEVICE" \
  --precision "$([ "$DEVICE" = cpu ] && echo no || echo fp16)" --steps "$([ "$DEVICE" = cpu ] && echo 3 || echo 50)"
step probe-features env PROBE_TORCH_PYTHON="$PY" PROBE_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider test/python/test_probe_fit.py -k vision_tower
cat "$out/check.jsonl"
exit $failed
