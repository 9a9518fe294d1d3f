"""gpu/dreambooth.py: its pure parts (arguments, jobs file, prompt plan, atomic done.json)
with any Python, and the real training loop and generation on the toy pipeline
(gpu/toy_stable_diffusion.py) on CPU when torch, diffusers, accelerate and peft are
installed, here or in .venv/verl:
- two instances, LoRA, a few steps at 32x32: each gets its adapter (it loads into the
  pipeline and holds LoRA weights for the UNet's attention), its images (PNG, 32x32), a
  done.json with finite losses, and a progress line per step and per image
- killed mid-way through the second instance, a rerun trains only the second: the first's
  done.json and images are untouched and the log shows no new start for it
- a full fine-tune without kept weights leaves images and no weights
"""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "gpu"))
import dreambooth  # noqa: E402

NEEDS = ("torch", "diffusers", "accelerate", "peft", "transformers")
VERL_PYTHON = ROOT / ".venv" / "verl" / "bin" / "python"


def _real_python():
    if all(importlib.util.find_spec(m) is not None for m in NEEDS):
        return sys.executable
    if VERL_PYTHON.exists():
        probe = subprocess.run([str(VERL_PYTHON), "-c", f"import {', '.join(NEEDS)}"], capture_output=True)
        if probe.returncode == 0:
            return str(VERL_PYTHON)
    return None


PYTHON = _real_python()
needs_diffusers = pytest.mark.skipif(PYTHON is None, reason="torch, diffusers, accelerate and peft are not installed, here or in .venv/verl (npm run setup installs them there unless TWINFLOW_VERL_TORCH=0)")
SCRIPT = str(ROOT / "gpu" / "dreambooth.py")


def test_the_defaults_are_the_diffusers_lora_recipe_and_the_five_templates(tmp_path):
    a = dreambooth.parse_args(["--pretrained", "m", "--instances", "j", "--output", "o", "--progress", "p"])
    assert (a.finetune, a.max_train_steps, a.learning_rate, a.rank, a.resolution) == ("lora", 500, 1e-4, 4, 512)
    assert (a.num_images, a.inference_steps, a.guidance_scale, a.keep_weights) == (5, 50, 7.5, True)
    assert a.templates == dreambooth.DEFAULT_TEMPLATES and len(set(a.templates)) == 5
    assert all(t.startswith("an image of a {category}") for t in a.templates)
    b = dreambooth.parse_args(["--pretrained", "m", "--instances", "j", "--output", "o", "--progress", "p", "--template", "x {category}", "--no-keep-weights"])
    assert b.templates == ["x {category}"] and b.keep_weights is False
    with pytest.raises(SystemExit):
        dreambooth.parse_args(["--pretrained", "m", "--instances", "j", "--output", "o", "--progress", "p", "--max-train-steps", "0"])


def test_the_image_plan_cycles_templates_with_one_seeded_call_each():
    plan = dreambooth.image_plan(["a {category}", "b {category} {identifier}"], 5, "mug", "sks", 10)
    assert [(c["prompt"], c["seed"], c["count"], c["indices"]) for c in plan] == [("a mug", 10, 3, [0, 2, 4]), ("b mug sks", 11, 2, [1, 3])]
    assert dreambooth.image_plan(["a {category}", "b {category}"], 1, "mug", "sks", 0) == [{"template": 0, "prompt": "a mug", "seed": 0, "count": 1, "indices": [0]}]
    assert dreambooth.image_plan(["a {category}"], 0, "mug", "sks", 0) == []


def test_a_jobs_file_without_images_or_with_a_path_as_folder_is_refused(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"instance": "a", "dir": "a", "category": "mug", "images": [], "seed": 0}) + "\n")
    with pytest.raises(SystemExit, match="jobs.jsonl:1: an instance needs"):
        dreambooth.read_jobs(jobs)
    jobs.write_text(json.dumps({"instance": "a", "dir": "../a", "category": "mug", "images": ["x"], "seed": 0}) + "\n")
    with pytest.raises(SystemExit, match="must be one folder name"):
        dreambooth.read_jobs(jobs)


def test_done_json_appears_whole_or_not_at_all(tmp_path):
    dreambooth.write_json_atomic(tmp_path / "done.json", {"a": 1})
    assert json.loads((tmp_path / "done.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["done.json"]


def _env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONUNBUFFERED": "1",
            # One thread: the toy is too small to gain from more, and on a busy machine more threads are many times slower.
            "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    if PYTHON is None:
        pytest.skip("no diffusers")
    folder = tmp_path_factory.mktemp("toy")
    subprocess.run([PYTHON, str(ROOT / "gpu" / "toy_stable_diffusion.py"), str(folder / "sd")], check=True, capture_output=True, env=_env(folder))
    images = []
    from_colours = [(200, 40, 40), (40, 160, 60), (60, 60, 200)]
    for i, colour in enumerate(from_colours):
        # A PPM is an image PIL reads without any extra package.
        p = folder / f"shot{i}.ppm"
        p.write_bytes(b"P6 80 72 255\n" + bytes(colour) * (80 * 72))
        images.append(str(p))
    return folder / "sd", images


def _jobs(tmp_path, images):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(j) + "\n" for j in [
        {"instance": "mug-1", "dir": "mug-1", "category": "mug", "images": images[:2], "seed": 7},
        {"instance": "cup/2", "dir": "cup_2", "category": "cup", "images": images[2:], "seed": 9},
    ]))
    return jobs


def _argv(model, jobs, out, *extra):
    return [PYTHON, SCRIPT, "--pretrained", str(model), "--instances", str(jobs), "--output", str(out), "--progress", str(out / "progress.jsonl"),
            "--resolution", "32", "--num-images", "3", "--inference-steps", "2", "--mixed-precision", "no", "--device", "cpu", *extra]


def _events(out):
    """The whole lines of the progress log (one being written is left for the next read)."""
    text = (out / "progress.jsonl").read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


@needs_diffusers
def test_lora_steps_on_the_toy_pipeline_leave_an_adapter_that_loads_and_images_that_decode(tmp_path, toy):
    model, images = toy
    out = tmp_path / "out"
    done = subprocess.run(_argv(model, _jobs(tmp_path, images), out, "--max-train-steps", "3"), capture_output=True, text=True, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    events = _events(out)
    for folder, instance in (("mug-1", "mug-1"), ("cup_2", "cup/2")):
        record = json.loads((out / folder / "done.json").read_text())
        assert record["instance"] == instance and record["steps"] == 3 and record["weights"] == "adapter/pytorch_lora_weights.safetensors"
        assert math.isfinite(record["first_loss"]) and math.isfinite(record["last_loss"])
        assert [i["n"] for i in record["images"]] == [0, 1, 2]
        steps = [e for e in events if e["event"] == "step" and e["instance"] == instance]
        assert [e["step"] for e in steps] == [1, 2, 3] and all(math.isfinite(e["loss"]) for e in steps)
        assert len([e for e in events if e["event"] == "image" and e["instance"] == instance]) == 3
    check = subprocess.run([PYTHON, "-c", LOAD_CHECK, str(model), str(out / "mug-1"), str(out / "mug-1" / "images")], capture_output=True, text=True, env=_env(tmp_path))
    assert check.returncode == 0, check.stderr[-3000:]
    loaded = json.loads(check.stdout.strip().splitlines()[-1])
    assert loaded["lora_keys"] > 0 and loaded["unet_only"] is True and loaded["attention_only"] is True
    assert loaded["sizes"] == [[32, 32]] * 3 and loaded["formats"] == ["PNG"] * 3


LOAD_CHECK = """import json, sys, pathlib
from safetensors.torch import load_file
from PIL import Image
from diffusers import StableDiffusionPipeline
weights = load_file(pathlib.Path(sys.argv[2]) / "adapter" / "pytorch_lora_weights.safetensors")
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1])
pipe.load_lora_weights(str(pathlib.Path(sys.argv[2]) / "adapter"), weight_name="pytorch_lora_weights.safetensors")
images = [Image.open(p) for p in sorted(pathlib.Path(sys.argv[3]).glob("*.png"))]
for im in images: im.load()
print(json.dumps({"lora_keys": len(weights), "unet_only": all(k.startswith("unet.") for k in weights),
                  "attention_only": all(any(t in k for t in ("to_q", "to_k", "to_v", "to_out.0")) for k in weights),
                  "sizes": [list(im.size) for im in images], "formats": [im.format for im in images]}))
"""


@needs_diffusers
def test_a_run_killed_in_the_second_instance_trains_only_that_one_again(tmp_path, toy):
    model, images = toy
    out = tmp_path / "out"
    jobs = _jobs(tmp_path, images)
    argv = _argv(model, jobs, out, "--max-train-steps", "40")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(tmp_path), start_new_session=True)
    try:
        # Killed as soon as the second instance has trained a step: no timer, the log says when.
        while proc.poll() is None:
            log = out / "progress.jsonl"
            if log.exists() and any(e["event"] == "step" and e["instance"] == "cup/2" for e in _events(out)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    first = (out / "mug-1" / "done.json").read_text()
    assert not (out / "cup_2" / "done.json").exists()
    before = len(_events(out))
    done = subprocess.run(_argv(model, jobs, out, "--max-train-steps", "2"), capture_output=True, text=True, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rerun = _events(out)[before:]
    assert {e["instance"] for e in rerun} == {"cup/2"}
    assert [e["step"] for e in rerun if e["event"] == "step"] == [1, 2]
    assert (out / "mug-1" / "done.json").read_text() == first
    assert json.loads((out / "cup_2" / "done.json").read_text())["steps"] == 2


@needs_diffusers
def test_a_full_fine_tune_without_kept_weights_leaves_images_only(tmp_path, toy):
    model, images = toy
    out = tmp_path / "out"
    argv = _argv(model, _jobs(tmp_path, images), out, "--finetune", "full", "--learning-rate", "5e-6", "--max-train-steps", "2", "--no-keep-weights",
                 "--with-prior-preservation", "--num-class-images", "1")
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    for folder in ("mug-1", "cup_2"):
        record = json.loads((out / folder / "done.json").read_text())
        assert record["weights"] is None and record["finetune"] == "full" and math.isfinite(record["last_loss"])
        assert sorted(p.name for p in (out / folder).iterdir()) == ["done.json", "images"]
    assert sorted(p.name for p in (out / "_class").iterdir()) == ["cup", "mug"]
