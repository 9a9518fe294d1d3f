"""gpu/verl_config_check.py against the installed verl's own trainer config (no torch needed).

Scenarios:
- The paper's run_grpo.sh overrides (TWIN/training/run_grpo.sh), with our reward and
  balanced sampler in place of the fork's `data.balance_binary_labels`, compose; every key
  comes back with the value given, typed (ints, floats, bools, the logger list).
- The fork-only `data.balance_binary_labels=True` is refused with exit 2 and one stderr line
  naming the key and saying to prefix '+'; with the '+' it composes.
- Every bad override is named, each on its own line, not just the first Hydra meets.
- '+' on a key verl has, and an override Hydra cannot parse, exit 2 too.
- Config group overrides map to the option chosen; '~' deletions map to null.
- The check imports neither torch nor ray (it must run on any machine, fast).
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "gpu" / "verl_config_check.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("verl") is None or importlib.util.find_spec("hydra") is None,
    reason="verl and hydra-core are not installed (npm run setup installs test/python/requirements-verl.txt)",
)

# TWIN/training/run_grpo.sh, as upstream verl takes it: our sampler instead of
# data.balance_binary_labels (verl's sampler hook needs data.dataloader_num_workers=0).
PAPER = {
    "algorithm.adv_estimator": "grpo",
    "data.train_files": "twin/train.parquet",
    "data.val_files": "twin/eval.parquet",
    "data.train_batch_size": 480,
    "data.max_prompt_length": 2048,
    "data.max_response_length": 2048,
    "data.truncation": "error",
    "data.image_key": "images",
    "data.dataloader_num_workers": 0,
    "data.sampler.class_path": "gpu/twin_sampler.py",
    "data.sampler.class_name": "BalancedLabelSampler",
    "actor_rollout_ref.model.path": "Qwen/Qwen2.5-VL-3B-Instruct",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 480,
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_coef": 0.01,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.n": 5,
    "actor_rollout_ref.rollout.tensor_model_parallel_size": 2,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.6,
    "algorithm.use_kl_in_reward": False,
    "reward_model.reward_manager": "batch",
    "custom_reward_function.path": "gpu/twin_reward.py",
    "custom_reward_function.name": "compute_score_batched",
    "trainer.n_gpus_per_node": 4,
    "trainer.nnodes": 1,
    "trainer.total_epochs": 1,
    "trainer.save_freq": 40,
    "trainer.test_freq": 20,
    "trainer.default_local_dir": "/data/twin/checkpoints",
    "trainer.project_name": "TWIN",
    "trainer.experiment_name": "TWIN-Qwen2.5-VL-3B",
    "trainer.logger": ["console", "file"],
    "trainer.resume_mode": "auto",
}


def hydra_value(value):
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(json.dumps(v) for v in value) + "]"
    return str(value)


def paper_overrides():
    return [f"{k}={hydra_value(v)}" for k, v in PAPER.items()]


def run(*overrides):
    return subprocess.run([sys.executable, str(CHECK), *overrides], capture_output=True, text=True, timeout=120)


def test_the_papers_grpo_overrides_compose_with_the_values_given():
    done = run(*paper_overrides())
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert values == PAPER
    assert list(values) == list(PAPER)
    assert isinstance(values["data.train_batch_size"], int) and isinstance(values["actor_rollout_ref.actor.optim.lr"], float)
    assert values["actor_rollout_ref.actor.use_kl_loss"] is True


def test_the_fork_only_key_is_refused_and_named():
    done = run(*paper_overrides(), "data.balance_binary_labels=True")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "data.balance_binary_labels" in lines[0]
    assert "+data.balance_binary_labels=True" in lines[0]


def test_the_fork_only_key_composes_as_a_new_key():
    done = run(*paper_overrides(), "+data.balance_binary_labels=True")
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert values["data.balance_binary_labels"] is True
    assert "+data.balance_binary_labels" not in values


def test_every_bad_override_is_named_on_its_own_line():
    done = run("data.balance_binary_labels=True", "data.train_batch_size=8", "trainer.no_such_thing=1",
               "actor_rollout_ref.actor.optim.no_such_lr=2")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3
    for line, key in zip(lines, ["data.balance_binary_labels", "trainer.no_such_thing", "actor_rollout_ref.actor.optim.no_such_lr"]):
        assert line.startswith(f"verl_config_check: {key}: ")
        assert f"+{key}=" in line


def test_adding_a_key_verl_has_is_refused():
    done = run("+data.train_batch_size=8")
    assert done.returncode == 2
    assert "data.train_batch_size" in done.stderr and "drop the '+'" in done.stderr
    assert json.loads(run("++data.train_batch_size=8").stdout) == {"data.train_batch_size": 8}


def test_an_override_hydra_cannot_parse_is_refused_with_hydras_message():
    done = run("data.train_batch_size=[1,")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "verl_config_check:" in done.stderr and "no viable alternative" in done.stderr


def test_an_unknown_config_group_option_is_refused():
    done = run("actor@actor_rollout_ref.actor=no_such_actor")
    assert done.returncode == 2
    assert "no_such_actor" in done.stderr


def test_groups_map_to_the_option_and_deletions_to_null():
    done = run("actor@actor_rollout_ref.actor=dp_actor", "~data.shuffle", "data.sampler={class_path:a.py,class_name:S}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "actor@actor_rollout_ref.actor": "dp_actor",
        "data.shuffle": None,
        "data.sampler": {"class_path": "a.py", "class_name": "S"},
    }


def test_the_check_imports_neither_torch_nor_ray():
    probe = (
        "import runpy, sys; sys.argv = ['verl_config_check.py', 'data.train_batch_size=4'];"
        f"\ntry:\n    runpy.run_path({str(CHECK)!r}, run_name='__main__')\nexcept SystemExit:\n    pass"
        "\nprint(sorted(m for m in ('torch', 'ray', 'tensordict', 'transformers') if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout) == {"data.train_batch_size": 4}
    assert done.stderr.strip().splitlines()[-1] == "[]"
