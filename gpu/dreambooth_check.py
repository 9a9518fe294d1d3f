"""gpu/dreambooth.py on a device, on the toy pipeline: the check gpu/check.sh runs on a GPU host.

    python gpu/dreambooth_check.py TOY_DIR OUT_DIR [--device cuda] [--precision fp16] [--steps 50]

TOY_DIR is gpu/toy_stable_diffusion.py's folder. Two instances (three and two drawn grounding
images) go through gpu/dreambooth.py as one process, as `dreambooth/generate` runs it: LoRA
for --steps steps at 64x64 in --precision, then 5 images each from the five templates with 10
denoising steps; then the same for one instance with a full fine-tune, prior preservation and
fp32 weights. It checks each instance's done.json, the finite losses, the adapter (it loads
with load_lora_weights and draws on the device), the images (64x64 PNGs) and a progress line
per step, and prints one JSON line: each process's seconds, each instance's seconds and first
and last loss, and the peak GPU memory of the adapter check. Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def draw(folder: Path) -> list[str]:
    """Five 80x72 pictures (PPM: PIL reads them with nothing else): a coloured block on grey, shifted."""
    paths = []
    for i, colour in enumerate([(200, 40, 40), (190, 60, 50), (210, 30, 60), (40, 160, 60), (50, 150, 90)]):
        rows = bytearray()
        for y in range(72):
            for x in range(80):
                rows += bytes(colour) if 15 + i < x < 60 + i and 10 < y < 60 else bytes((230, 230, 230))
        p = folder / f"shot{i}.ppm"
        p.write_bytes(b"P6 80 72 255\n" + bytes(rows))
        paths.append(str(p))
    return paths


def run(toy: Path, out: Path, jobs: list[dict], extra: list[str], device: str) -> tuple[float, list[dict]]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    argv = [sys.executable, str(HERE / "dreambooth.py"), "--pretrained", str(toy), "--instances", str(out / "jobs.jsonl"), "--output", str(out),
            "--progress", str(out / "progress.jsonl"), "--resolution", "64", "--num-images", "5", "--inference-steps", "10", "--device", device, *extra]
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"gpu/dreambooth.py exited {done.returncode}:\n{done.stderr[-4000:]}")
    return seconds, [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]


def check_instance(out: Path, job: dict, steps: int, events: list[dict], lora: bool) -> dict:
    from PIL import Image

    record = json.loads((out / job["dir"] / "done.json").read_text())
    assert record["steps"] == steps and all(math.isfinite(record[k]) for k in ("first_loss", "last_loss")), record
    losses = [e["loss"] for e in events if e["event"] == "step" and e["instance"] == job["instance"]]
    assert len(losses) == steps and all(math.isfinite(v) for v in losses), f"{job['instance']}: {len(losses)} step lines"
    for image in record["images"]:
        im = Image.open(out / job["dir"] / image["file"])
        im.load()
        assert im.format == "PNG" and im.size == (64, 64), (image, im.format, im.size)
    assert len(record["images"]) == 5
    if lora:
        assert record["weights"] == "adapter/pytorch_lora_weights.safetensors" and (out / job["dir"] / record["weights"]).exists()
    return {"first_loss": losses[0], "last_loss": losses[-1], "seconds": record["seconds"]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("toy", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="fp16")
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    shots = draw(args.out)
    jobs = [{"instance": "mug-red", "dir": "mug-red", "category": "mug", "images": shots[:3], "seed": 1},
            {"instance": "vase-green", "dir": "vase-green", "category": "vase", "images": shots[3:], "seed": 2}]
    lora_s, events = run(args.toy, args.out / "lora", jobs, ["--max-train-steps", str(args.steps), "--mixed-precision", args.precision], args.device)
    result = {"device": args.device, "precision": args.precision, "lora_process_seconds": round(lora_s, 2),
              "lora": {j["instance"]: check_instance(args.out / "lora", j, args.steps, events, True) for j in jobs}}
    check = subprocess.run([sys.executable, "-c", LOAD_CHECK, str(args.toy), str(args.out / "lora" / "mug-red" / "adapter"), args.device],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-3000:]
    result["adapter_loads"] = json.loads(check.stdout.strip().splitlines()[-1])
    full_s, events = run(args.toy, args.out / "full", jobs[:1], ["--finetune", "full", "--learning-rate", "5e-6", "--max-train-steps", "10",
                                                                "--with-prior-preservation", "--num-class-images", "2", "--mixed-precision", args.precision,
                                                                "--no-keep-weights"], args.device)
    result["full_process_seconds"] = round(full_s, 2)
    result["full"] = check_instance(args.out / "full", jobs[0], 10, events, False)
    print(json.dumps(result))
    return 0


# Loads the adapter as a later user would, and draws one image with it on the device.
LOAD_CHECK = """import json, sys, torch
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1]).to(sys.argv[3])
pipe.load_lora_weights(sys.argv[2], weight_name="pytorch_lora_weights.safetensors")
image = pipe("an image of a mug", num_inference_steps=2, height=64, width=64, generator=torch.Generator(sys.argv[3]).manual_seed(0)).images[0]
peak = torch.cuda.max_memory_allocated() // 2**20 if torch.cuda.is_available() else None
print(json.dumps({"adapters": pipe.get_list_adapters(), "size": list(image.size), "peak_mb": peak}))
"""

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
