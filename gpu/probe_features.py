"""Frozen vision-tower features of a VLM for probe/encoder (Table 5), on a GPU host.

    python gpu/probe_features.py MODEL IMAGES.jsonl OUT.f32 [--device cuda] [--dtype bfloat16]
        [--batch-size 16] [--max-pixels 200704]

MODEL is a Hugging Face id or folder of a Qwen2-VL-family model (Qwen2.5-VL: its `visual`
tower and the processor's image processor). Each line of IMAGES.jsonl is {"file": PATH} or
{"rgb": PATH, "index": I, "size": S} (picture I of a raw N x S x S x 3 uint8 file). For
every image, in order, the tower's output tokens (after the patch merger, the language
model's width) are mean-pooled into one row; rows go to OUT.f32 as little-endian float32,
row-major, no header. Prints `progress DONE/TOTAL` after each batch and, at the end, one JSON
line {"rows", "dims"}. An image it cannot open exits 2 naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def open_image(item: dict) -> Image.Image:
    if "file" in item:
        try:
            with Image.open(item["file"]) as im:
                return im.convert("RGB")
        except Exception as err:  # missing, truncated, not an image
            raise ValueError(f"cannot open {item['file']} ({type(err).__name__}: {err})") from err
    size = int(item["size"])
    with open(item["rgb"], "rb") as f:
        f.seek(int(item["index"]) * size * size * 3)
        data = f.read(size * size * 3)
    if len(data) != size * size * 3:
        raise ValueError(f"{item['rgb']} has no picture {item['index']}")
    return Image.frombytes("RGB", (size, size), data)


def load(model_id: str, device: str, dtype: str):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_id)
    model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=getattr(torch, dtype))
    visual = getattr(model, "visual", None) or getattr(getattr(model, "model", None), "visual", None)
    if visual is None:
        raise SystemExit(f"probe_features: {model_id} has no visual tower (model.visual); only Qwen2-VL-family models are supported")
    visual.to(device).eval()
    return processor.image_processor, visual


def embed(image_processor, visual, images: list[Image.Image], device: str, max_pixels: int) -> np.ndarray:
    import torch

    inputs = image_processor(images=images, return_tensors="pt", max_pixels=max_pixels)
    grid = inputs["image_grid_thw"]
    with torch.no_grad():
        tokens = visual(inputs["pixel_values"].to(device, dtype=visual.dtype), grid_thw=grid.to(device))
    if isinstance(tokens, (tuple, list)):
        tokens = tokens[0]
    merge = visual.spatial_merge_size if hasattr(visual, "spatial_merge_size") else 2
    counts = (grid.prod(dim=1) // (merge * merge)).tolist()
    pooled = [part.float().mean(dim=0) for part in torch.split(tokens, counts)]
    return torch.stack(pooled).cpu().numpy().astype("<f4")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-pixels", type=int, default=200704)
    a = p.parse_args(argv)
    items = [json.loads(line) for line in a.images.read_text().splitlines() if line.strip()]
    image_processor, visual = load(a.model, a.device, a.dtype)
    dims = 0
    tmp = a.out.with_suffix(".partial")
    with tmp.open("wb") as out:
        for start in range(0, len(items), a.batch_size):
            try:
                batch = [open_image(item) for item in items[start:start + a.batch_size]]
            except ValueError as err:
                print(f"probe_features: {err}", file=sys.stderr)
                return 2
            rows = embed(image_processor, visual, batch, a.device, a.max_pixels)
            dims = rows.shape[1]
            out.write(rows.tobytes())
            print(f"progress {min(start + a.batch_size, len(items))}/{len(items)}", flush=True)
    tmp.replace(a.out)
    print(json.dumps({"rows": len(items), "dims": int(dims)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
