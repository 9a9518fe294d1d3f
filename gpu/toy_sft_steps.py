"""A few supervised fine-tuning steps of a Qwen2.5-VL model on Twin-style pairs, on one device.

    python gpu/toy_sft_steps.py MODEL_DIR [--steps 20] [--device cuda] [--lr 1e-3]

What `llamafactory/sft` asks of a GPU host, in miniature and without LLaMA-Factory: the
model folder loads (gpu/toy_qwen2_5_vl.py writes a toy one), its processor turns two images
and a question into the chat layout with one token per merged patch, the forward pass takes
the image features, the loss covers only the assistant's answer, and the backward pass
reaches the vision tower (the paper trains it: `freeze_vision_tower: false`). The pairs are
drawn images (same pattern, or two different ones) with "<answer>yes</answer>" or
"<answer>no</answer>" answers; the same small batch repeats, so the loss must fall.

Prints one JSON line: device, steps, first and last loss, seconds per step, and whether
every vision-tower parameter got a gradient. Exits 1 when the loss did not fall or the
vision tower got none.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def pair_images(seed: int):
    """Two 56x56 pictures: the same pattern twice (a "yes" pair) for even seeds, two patterns otherwise."""
    from PIL import Image, ImageDraw

    def draw(k: int):
        img = Image.new("RGB", (56, 56), (20 * k % 255, 80, 160))
        d = ImageDraw.Draw(img)
        d.rectangle([4 + k % 20, 8, 30 + k % 20, 40], fill=(250, 220 - 10 * k % 200, 30))
        return img

    same = seed % 2 == 0
    return [draw(seed), draw(seed if same else seed + 7)], "yes" if same else "no"


def batch(processor, n: int):
    """n pairs as the processor lays them out, labels masked to the assistant's answer."""
    import torch

    texts, images, answers = [], [], []
    for i in range(n):
        imgs, label = pair_images(i)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same object instance?"}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        answers.append(f"<answer>{label}</answer><|im_end|>")
        texts.append(prompt + answers[-1])
        images.extend(imgs)
    enc = processor(text=texts, images=images, return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    for row, answer in enumerate(answers):
        n_answer = len(processor.tokenizer(answer, add_special_tokens=False)["input_ids"])
        ends = int(enc["attention_mask"][row].nonzero().max()) + 1
        labels[row, : ends - n_answer] = -100
    enc["labels"] = labels
    return {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a Qwen2.5-VL model folder")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(args.model)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).to(args.device)
    model.train()
    data = {k: v.to(args.device) for k, v in batch(processor, args.pairs).items()}
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    vision = [p for name, p in model.named_parameters() if ".visual." in f".{name}" or name.startswith("visual.")]
    losses, vision_grads = [], False
    start = time.perf_counter()
    for step in range(args.steps):
        optim.zero_grad()
        loss = model(**data).loss
        loss.backward()
        if step == 0:
            vision_grads = bool(vision) and all(p.grad is not None and torch.isfinite(p.grad).all() for p in vision)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        losses.append(float(loss.detach()))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - start) / args.steps
    ok = losses[-1] < losses[0] and vision_grads
    print(json.dumps({"device": args.device, "steps": args.steps, "first_loss": losses[0], "last_loss": losses[-1],
                      "seconds_per_step": round(per_step, 4), "vision_parameters": len(vision), "vision_grads": vision_grads, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
