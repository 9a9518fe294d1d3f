"""DreamBooth on a few grounding images per instance, then generated look-alikes: the GPU side
of twinflow's `dreambooth/generate` stage (the paper's generated negatives).

    python gpu/dreambooth.py --pretrained MODEL --instances JOBS.jsonl --output OUT --progress LOG.jsonl [options]

JOBS.jsonl has one instance a line: {"instance", "dir", "category", "images": [paths], "seed"}.
For each, in order, it fine-tunes the base model's UNet on the images with the instance prompt
("a photo of sks {category}"; LoRA on the attention projections by default, or the whole UNet),
optionally with DreamBooth's prior-preservation loss on class images the base model draws
("a photo of {category}", drawn once per category), then draws --num-images images, cycling
through the prompt templates, each template's images from one seeded generator. Per instance:

    OUT/DIR/adapter/pytorch_lora_weights.safetensors   (LoRA; the whole UNet: OUT/DIR/unet/)
    OUT/DIR/images/N.png
    OUT/DIR/done.json                                  written last, atomically

An instance whose done.json exists is skipped; a half-finished one starts again. LOG.jsonl
gets a JSON line per training step ({"event": "step", "instance", "step", "total", "loss"}),
per image ({"event": "image", ...}) and per instance ({"event": "start" | "done", ...}).
Needs torch, diffusers, accelerate and peft; the parts before `run` need none of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

DEFAULT_TEMPLATES = [
    "an image of a {category}",
    "an image of a {category}, product photo",
    "an image of a {category} on a plain background",
    "an image of a {category} on a table",
    "an image of a {category}, close-up",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pretrained", required=True, help="a diffusers Stable Diffusion folder or model id")
    p.add_argument("--instances", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--progress", required=True, type=Path)
    p.add_argument("--finetune", choices=["lora", "full"], default="lora")
    p.add_argument("--max-train-steps", type=int, default=500)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--train-batch-size", type=int, default=1)
    p.add_argument("--identifier", default="sks")
    p.add_argument("--instance-prompt", default="a photo of {identifier} {category}")
    p.add_argument("--class-prompt", default="a photo of {category}")
    p.add_argument("--with-prior-preservation", action="store_true")
    p.add_argument("--prior-loss-weight", type=float, default=1.0)
    p.add_argument("--num-class-images", type=int, default=50)
    p.add_argument("--template", action="append", dest="templates", help="a generation prompt; repeat for more")
    p.add_argument("--num-images", type=int, default=5)
    p.add_argument("--inference-steps", type=int, default=50)
    p.add_argument("--guidance-scale", type=float, default=7.5)
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="fp16")
    p.add_argument("--device", default="auto", help="auto (cuda when there is one), cuda, cuda:N or cpu")
    p.add_argument("--keep-weights", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the adapter (or fine-tuned UNet) in OUT/DIR")
    args = p.parse_args(argv)
    args.templates = args.templates or DEFAULT_TEMPLATES
    for name in ("max_train_steps", "num_images", "inference_steps", "train_batch_size", "rank", "resolution"):
        if getattr(args, name) < (0 if name == "num_images" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def read_jobs(path: Path) -> list[dict]:
    jobs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for i, job in enumerate(jobs, 1):
        missing = [k for k in ("instance", "dir", "category", "images", "seed") if k not in job]
        if missing or not job["images"]:
            raise SystemExit(f"{path}:{i}: an instance needs instance, dir, category, seed and images (missing {missing or ['images']})")
        if "/" in job["dir"] or job["dir"] in ("", ".", ".."):
            raise SystemExit(f"{path}:{i}: dir {job['dir']!r} must be one folder name")
    return jobs


def fill(template: str, category: str, identifier: str) -> str:
    return template.format(category=category, identifier=identifier)


def image_plan(templates: list[str], num_images: int, category: str, identifier: str, seed: int) -> list[dict]:
    """Image n uses template n mod T; each template's images come from one generator seeded seed + t, in one call."""
    plan = []
    for t, template in enumerate(templates):
        count = len(range(t, num_images, len(templates)))
        if count:
            plan.append({"template": t, "prompt": fill(template, category, identifier), "seed": seed + t, "count": count,
                         "indices": list(range(t, num_images, len(templates)))})
    return plan


def write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


class Progress:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("a", buffering=1)

    def __call__(self, event: str, **fields) -> None:
        self.file.write(json.dumps({"event": event, **fields}) + "\n")


def load_images(paths: list[str], resolution: int):
    """Each image: shorter side resized to the resolution, centre-cropped square, as a [-1, 1] CHW tensor."""
    import numpy as np
    import torch
    from PIL import Image

    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        scale = resolution / min(im.size)
        im = im.resize((max(resolution, round(im.width * scale)), max(resolution, round(im.height * scale))), Image.BICUBIC)
        left, top = (im.width - resolution) // 2, (im.height - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
        out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1))
    return out


class DreamBooth:
    """One base pipeline per process, fine-tuned afresh for each instance."""

    def __init__(self, args: argparse.Namespace, progress: Progress):
        import torch
        from accelerate import Accelerator
        from diffusers import DDPMScheduler, StableDiffusionPipeline

        self.args, self.progress, self.torch = args, progress, torch
        cpu = args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available())
        if not cpu and args.device.startswith("cuda:"):
            torch.cuda.set_device(int(args.device.split(":")[1]))
        self.acc = Accelerator(mixed_precision=args.mixed_precision, cpu=cpu)
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.mixed_precision, torch.float32)
        self.pipe = StableDiffusionPipeline.from_pretrained(args.pretrained, safety_checker=None, requires_safety_checker=False)
        self.pipe.set_progress_bar_config(disable=True)
        self.noise = DDPMScheduler.from_config(self.pipe.scheduler.config)
        p = self.pipe
        p.vae.requires_grad_(False).to(self.acc.device, self.dtype)
        p.text_encoder.requires_grad_(False).to(self.acc.device, self.dtype)
        # LoRA trains adapters over a frozen UNet in the low precision; a full fine-tune keeps fp32 weights (the grad scaler needs them).
        p.unet.requires_grad_(False).to(self.acc.device, self.dtype if args.finetune == "lora" else torch.float32)
        self.base = {k: v.detach().to("cpu", copy=True) for k, v in p.unet.state_dict().items()} if args.finetune == "full" else None
        self.class_images: dict[str, list] = {}

    def embed(self, prompt: str):
        tok = self.pipe.tokenizer(prompt, padding="max_length", truncation=True, max_length=self.pipe.tokenizer.model_max_length, return_tensors="pt")
        with self.torch.no_grad():
            return self.pipe.text_encoder(tok.input_ids.to(self.acc.device))[0]

    def latents(self, pixels):
        with self.torch.no_grad():
            return self.pipe.vae.encode(pixels.to(self.acc.device, self.dtype)).latent_dist

    def draw(self, prompt: str, count: int, seed: int, steps: int):
        gen = self.torch.Generator(device=self.acc.device).manual_seed(seed)
        with self.acc.autocast():
            return self.pipe(prompt, num_inference_steps=steps, guidance_scale=self.args.guidance_scale,
                             num_images_per_prompt=count, generator=gen, height=self.args.resolution, width=self.args.resolution).images

    def prior(self, category: str, out: Path) -> list:
        """Class images of the base model, drawn once per category (DreamBooth's prior preservation)."""
        if category not in self.class_images:
            folder = out / "_class" / "".join(c if c.isalnum() else "_" for c in category)
            folder.mkdir(parents=True, exist_ok=True)
            have = sorted(folder.glob("*.png"))
            prompt = fill(self.args.class_prompt, category, self.args.identifier)
            for i in range(len(have), self.args.num_class_images):
                self.draw(prompt, 1, 1_000_003 + i, self.args.inference_steps)[0].save(folder / f"{i}.png")
            paths = [str(folder / f"{i}.png") for i in range(self.args.num_class_images)]
            self.class_images[category] = [self.latents(x[None]) for x in load_images(paths, self.args.resolution)]
        return self.class_images[category]

    def train(self, job: dict) -> list[float]:
        torch, args, unet = self.torch, self.args, self.pipe.unet
        torch.manual_seed(job["seed"])
        if args.finetune == "lora":
            from diffusers.training_utils import cast_training_params
            from peft import LoraConfig

            unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian",
                                        target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
            cast_training_params(unet, dtype=torch.float32)
        else:
            unet.requires_grad_(True)
        params = [p for p in unet.parameters() if p.requires_grad]
        # Prepared, so that with fp16 the grad scaler unscales before clipping and skips steps that overflowed.
        optim = self.acc.prepare(torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=1e-2))
        unet.train()
        instance = [self.latents(x[None]) for x in load_images(job["images"], args.resolution)]
        prompt = self.embed(fill(args.instance_prompt, job["category"], args.identifier))
        prior = self.prior(job["category"], args.output) if args.with_prior_preservation else None
        class_prompt = self.embed(fill(args.class_prompt, job["category"], args.identifier)) if prior else None
        losses = []
        for step in range(1, args.max_train_steps + 1):
            pick = [instance[(step * args.train_batch_size + i) % len(instance)] for i in range(args.train_batch_size)]
            loss = self.loss(pick, prompt)
            if prior:
                pick = [prior[(step * args.train_batch_size + i) % len(prior)] for i in range(args.train_batch_size)]
                loss = loss + args.prior_loss_weight * self.loss(pick, class_prompt)
            self.acc.backward(loss)
            self.acc.clip_grad_norm_(params, 1.0)
            optim.step()
            optim.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise SystemExit(f"instance {job['instance']}: the loss is {value} at step {step}; lower --learning-rate or use --mixed-precision bf16")
            losses.append(value)
            self.progress("step", instance=job["instance"], step=step, total=args.max_train_steps, loss=value)
        unet.eval()
        self.acc.free_memory()  # lets go of this instance's optimizer (and its LoRA weights' state)
        return losses

    def loss(self, dists: list, prompt):
        """DDPM noise-prediction MSE (or v-prediction, as the scheduler says) on a batch of latents."""
        torch, sched = self.torch, self.noise
        latents = torch.cat([d.sample() for d in dists]) * self.pipe.vae.config.scaling_factor
        noise = torch.randn_like(latents)
        t = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), device=latents.device)
        with self.acc.autocast():
            pred = self.pipe.unet(sched.add_noise(latents, noise, t), t, prompt.expand(latents.shape[0], -1, -1)).sample
        target = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(latents, noise, t)
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def save_and_reload(self, folder: Path) -> str:
        """The trained weights saved, then loaded back the documented way before anything is drawn with them."""
        unet = self.pipe.unet
        if self.args.finetune == "lora":
            from diffusers.utils import convert_state_dict_to_diffusers
            from peft.utils import get_peft_model_state_dict

            layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
            type(self.pipe).save_lora_weights(save_directory=str(folder / "adapter"), unet_lora_layers=layers, safe_serialization=True)
            unet.delete_adapters(["default"])
            self.pipe.load_lora_weights(str(folder / "adapter"), weight_name="pytorch_lora_weights.safetensors", adapter_name="instance")
            return "adapter/pytorch_lora_weights.safetensors"
        unet.save_pretrained(folder / "unet")
        return "unet/diffusion_pytorch_model.safetensors"

    def reset(self) -> None:
        if self.args.finetune == "lora":
            self.pipe.unload_lora_weights()
        else:
            self.pipe.unet.load_state_dict(self.base)
            self.pipe.unet.requires_grad_(False)

    def instance(self, job: dict) -> None:
        args, folder = self.args, self.args.output / job["dir"]
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "images").mkdir(parents=True)
        started = time.time()
        self.progress("start", instance=job["instance"], images=len(job["images"]))
        losses = self.train(job)
        weights = self.save_and_reload(folder)
        images, done = [], 0
        for call in image_plan(args.templates, args.num_images, job["category"], args.identifier, job["seed"]):
            for n, image in zip(call["indices"], self.draw(call["prompt"], call["count"], call["seed"], args.inference_steps)):
                image.save(folder / "images" / f"{n}.png")
                images.append({"file": f"images/{n}.png", "n": n, "prompt": call["prompt"], "template": call["template"], "seed": call["seed"]})
                done += 1
                self.progress("image", instance=job["instance"], n=done, total=args.num_images)
        self.reset()
        if not args.keep_weights:
            shutil.rmtree(folder / Path(weights).parts[0])
        record = {"instance": job["instance"], "images": sorted(images, key=lambda i: i["n"]),
                  "weights": weights if args.keep_weights else None, "finetune": args.finetune,
                  "instance_prompt": fill(args.instance_prompt, job["category"], args.identifier),
                  "steps": len(losses), "first_loss": losses[0], "last_loss": losses[-1], "seconds": round(time.time() - started, 3)}
        write_json_atomic(folder / "done.json", record)
        self.progress("done", instance=job["instance"], steps=len(losses), loss=losses[-1])


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    jobs = [j for j in read_jobs(args.instances) if not (args.output / j["dir"] / "done.json").exists()]
    progress = Progress(args.progress)
    if not jobs:
        return 0
    runner = DreamBooth(args, progress)
    for job in jobs:
        runner.instance(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
