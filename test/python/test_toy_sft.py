"""gpu/toy_sft_steps.py on CPU: a few supervised steps of the toy Qwen2.5-VL
(gpu/toy_qwen2_5_vl.py) on drawn image pairs, the loss on the answer only. The loss falls
over repeats of one batch and every vision-tower parameter gets a gradient (the paper trains
the vision tower). gpu/check.sh runs the same script on a GPU host with --device cuda.

Needs torch and transformers: run with .venv/verl's Python when this one lacks them.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERL_PYTHON = ROOT / ".venv" / "verl" / "bin" / "python"
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
PYTHON = sys.executable if HAS_TORCH else (str(VERL_PYTHON) if VERL_PYTHON.exists() else None)


@pytest.mark.skipif(PYTHON is None, reason="torch/transformers are not installed, here or in .venv/verl (npm run setup installs them there unless TWINFLOW_VERL_TORCH=0)")
def test_a_few_sft_steps_lower_the_loss_and_reach_the_vision_tower(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    subprocess.run([PYTHON, str(ROOT / "gpu" / "toy_qwen2_5_vl.py"), str(tmp_path / "toy")], check=True, env=env, capture_output=True)
    done = subprocess.run([PYTHON, str(ROOT / "gpu" / "toy_sft_steps.py"), str(tmp_path / "toy"), "--device", "cpu", "--steps", "6"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert result["last_loss"] < result["first_loss"]
    assert result["vision_grads"] is True and result["vision_parameters"] > 0
