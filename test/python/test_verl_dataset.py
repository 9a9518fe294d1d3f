"""Our verl parquet (twin/assemble) read by verl's own RLHFDataset, with a real Qwen2.5-VL
processor and tokenizer (gpu/toy_qwen2_5_vl.py's toy model), and our balanced sampler built
by verl's own create_rl_sampler.

Scenarios:
- The toy model folder loads offline through AutoProcessor / AutoTokenizer / the model
  class and through verl's hf_processor / hf_tokenizer as main_ppo calls them; the same seed
  writes the same weights.
- Every train and eval row of the folder export becomes an item whose input_ids hold, for
  each of the two images, <|vision_start|>, as many <|image_pad|> as the processor's
  image_grid_thw gives that image, and <|vision_end|>; the question text follows; the
  reward_model ground truth, data_source and extra_info come through intact; the position
  ids are Qwen2-VL's 3-D rope (4 rows); raw_prompt_ids (for vLLM) keep one pad per image.
- Both exports work from any working folder: verl has no setting for a folder that image
  paths would be joined to, so the verl parquet carries image bytes, folder mode too.
- With data.filter_overlong_prompts=True (verl/grpo sets it) no row is dropped; verl drops a
  row it cannot process without an error.
- verl's create_rl_sampler builds gpu/twin_sampler.py's BalancedLabelSampler from the data
  config (an AbstractSampler, as verl asserts) and a DataLoader over the dataset with verl's
  collate_fn gives batches with as many yes as no; verl refuses the sampler unless
  data.dataloader_num_workers=0.

Needs torch, transformers, ray and what else `import verl` imports: npm run setup puts them
in .venv/verl (test/python/requirements-verl-torch.txt). Run from .venv, where they are not,
the first test runs this file again with .venv/verl's Python; the others skip, saying so.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERL_PYTHON = ROOT / ".venv" / "verl" / "bin" / "python"
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))

needs_torch = pytest.mark.skipif(
    not HAS_TORCH,
    reason=(f"torch/transformers are not installed in this Python; test_in_verls_own_venv runs these tests with "
            f"{VERL_PYTHON.relative_to(ROOT)}" if VERL_PYTHON.exists() else
            "torch/transformers are not installed, here or in .venv/verl (npm run setup installs them there "
            "unless TWINFLOW_VERL_TORCH=0)"),
)

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def test_in_verls_own_venv(tmp_path):
    if HAS_TORCH:
        pytest.skip("torch and transformers are installed in this Python: the tests below run here directly")
    if not VERL_PYTHON.exists():
        pytest.skip("torch/transformers are not installed, here or in .venv/verl (npm run setup installs them "
                    "there unless TWINFLOW_VERL_TORCH=0)")
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [str(VERL_PYTHON), "-m", "pytest", str(Path(__file__).relative_to(ROOT)), "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    last = done.stdout.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last, tail
    # Every test but this one ran there (this one skips in a Python that has torch).
    assert "1 skipped" in last, tail


@pytest.fixture(scope="session")
def offline(tmp_path_factory):
    for k, v in OFFLINE.items():
        os.environ.setdefault(k, v)
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-datasets")))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    # verl's length filter forks a worker (datasets' Pool, even for one process); a child
    # forked after torch ran ops on its OpenMP threads hangs. verl builds its dataset before
    # any torch op; this process has run the toy model, so it keeps torch to one thread.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    from test_twin_export import build_exports

    return build_exports(tmp_path_factory)


@pytest.fixture(scope="session")
def toy(offline, tmp_path_factory):
    from loading import load_file

    module = load_file("gpu/toy_qwen2_5_vl.py", "toy_qwen2_5_vl")
    out = tmp_path_factory.mktemp("toy") / "model"
    module.build(out, seed=0)
    return out


@pytest.fixture(scope="session")
def verl_config():
    from loading import load_file

    module = load_file("gpu/verl_config_check.py", "verl_config_check")

    def compose(*overrides):
        return module.compose(["data.max_prompt_length=2048", "data.truncation=error", *overrides])

    return compose


@pytest.fixture(scope="session")
def processing(toy):
    from verl.utils import hf_processor, hf_tokenizer

    # As verl.trainer.main_ppo loads them.
    tokenizer = hf_tokenizer(str(toy), trust_remote_code=False)
    processor = hf_processor(str(toy), trust_remote_code=False, use_fast=True)
    assert processor is not None, "verl's hf_processor gave None: it swallows AutoProcessor's error"
    return tokenizer, processor


def require_image_bytes(path):
    """An export that names images by relative path only cannot be read from another folder."""
    import pyarrow.parquet as pq

    names = [f.name for f in pq.read_schema(path).field("images").type.value_type]
    if "bytes" not in names:
        pytest.xfail(f"{path.name} names its images by relative path ({names}): verl run from another folder "
                     "(verl/grpo runs it from its stage folder) cannot open them, and its length filter then "
                     "drops every row without an error")


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dataset(path, processing, config):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer, processor = processing
    return RLHFDataset(data_files=str(path), tokenizer=tokenizer, processor=processor, config=config.data)


def token_ids(tokenizer):
    names = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>"]
    return [tokenizer.convert_tokens_to_ids(n) for n in names]


def assert_two_images_in(item, tokenizer, processor):
    start, pad, end = token_ids(tokenizer)
    ids = item["input_ids"][item["attention_mask"].bool()].tolist()
    grid = item["multi_modal_inputs"]["image_grid_thw"]
    assert tuple(grid.shape) == (2, 3)
    merge = processor.image_processor.merge_size
    per_image = [int(g.prod()) // (merge * merge) for g in grid]
    assert all(n > 0 for n in per_image)
    # <|vision_start|> <|image_pad|> x n <|vision_end|>, once per image, in order.
    runs, i = [], 0
    while i < len(ids):
        if ids[i] == start:
            j = i + 1
            while j < len(ids) and ids[j] == pad:
                j += 1
            assert j < len(ids) and ids[j] == end, "an image's tokens are not closed by <|vision_end|>"
            runs.append(j - i - 1)
            i = j
        i += 1
    assert runs == per_image
    assert ids.count(pad) == sum(per_image)
    assert len(item["multi_modal_data"]["image"]) == 2
    assert tuple(item["position_ids"].shape) == (4, len(item["input_ids"]))
    return ids


@needs_torch
def test_the_toy_model_loads_offline_and_its_seed_fixes_the_weights(toy, tmp_path):
    import torch
    from transformers import AutoProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from loading import load_file

    processor = AutoProcessor.from_pretrained(str(toy))
    tokenizer = AutoTokenizer.from_pretrained(str(toy))
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(toy))
    for name in ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]:
        ids = tokenizer.encode(name, add_special_tokens=False)
        assert len(ids) == 1, name
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Same?"}]}],
        add_generation_prompt=True, tokenize=False,
    )
    assert "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Same?<|im_end|>\n<|im_start|>assistant\n" in text

    module = load_file("gpu/toy_qwen2_5_vl.py", "toy_qwen2_5_vl")
    module.build(tmp_path / "again", seed=0)
    module.build(tmp_path / "other", seed=1)
    weights = [(d / "model.safetensors").read_bytes() for d in (toy, tmp_path / "again", tmp_path / "other")]
    assert weights[0] == weights[1] != weights[2]
    assert isinstance(model.model.language_model.embed_tokens.weight, torch.Tensor)


@needs_torch
@pytest.mark.parametrize("split", ["train", "eval"])
def test_rlhf_dataset_yields_both_images_tokens_and_the_ground_truth(exports, processing, verl_config, split, tmp_path, monkeypatch):
    folder = exports["folder"]
    monkeypatch.chdir(tmp_path)  # verl's working folder is not the dataset's
    require_image_bytes(folder / f"{split}.parquet")
    tokenizer, processor = processing
    config = verl_config(f"data.train_files={folder / 'train.parquet'}", f"data.val_files={folder / 'eval.parquet'}")
    ds = dataset(folder / f"{split}.parquet", processing, config)
    rows = rows_of(folder / f"{split}.jsonl")
    assert len(ds) == len(rows) > 0
    for k, row in enumerate(rows):
        item = ds[k]
        ids = assert_two_images_in(item, tokenizer, processor)
        assert len(item["input_ids"]) == 2048
        assert item["reward_model"] == {"style": "rule", "ground_truth": row["answer"]}
        assert item["data_source"] == "twin" and item["ability"] == "vision"
        assert item["extra_info"]["split"] == split and item["extra_info"]["index"] == k == item["index"]
        text = tokenizer.decode(ids)
        assert row["question"] in text
        assert text.index("<|vision_end|>") < text.index(row["question"])
        # raw_prompt_ids (what vLLM is given) keep one <|image_pad|> per image: vLLM expands them itself.
        assert tokenizer.decode(item["raw_prompt_ids"]) == re.sub(r"(<\|image_pad\|>)+", "<|image_pad|>", text)


@needs_torch
def test_the_embed_export_reads_the_same(exports, processing, verl_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tokenizer, processor = processing
    ds = dataset(exports["embed"] / "train.parquet", processing, verl_config())
    rows = rows_of(exports["folder"] / "train.jsonl")  # same seed and input: same rows, same order
    assert len(ds) == len(rows)
    for k in range(len(ds)):
        item = ds[k]
        assert_two_images_in(item, tokenizer, processor)
        assert item["reward_model"]["ground_truth"] == rows[k]["answer"]


@needs_torch
def test_no_row_is_lost_to_verls_length_filter_from_any_folder(exports, processing, verl_config, tmp_path, monkeypatch):
    # verl's length filter counts a row it cannot process (an image it cannot open, say) as too
    # long and drops it without an error; verl/grpo turns the filter on.
    monkeypatch.chdir(tmp_path)
    for mode in ("folder", "embed"):
        for split in ("train", "eval"):
            path = exports[mode] / f"{split}.parquet"
            if not path.exists():
                continue
            require_image_bytes(path)
            filtered = dataset(path, processing, verl_config("data.filter_overlong_prompts=True"))
            assert len(filtered) == len(rows_of(exports["folder"] / f"{split}.jsonl")), (mode, split)


@needs_torch
def test_create_rl_sampler_builds_our_balanced_sampler(exports, processing, verl_config, monkeypatch):
    from torch.utils.data import DataLoader
    from verl.experimental.dataset.sampler import AbstractSampler
    from verl.trainer.main_ppo import create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    folder = exports["folder"]
    monkeypatch.chdir(folder)
    sampler_file = ROOT / "gpu" / "twin_sampler.py"  # absolute, as verl/grpo passes it: verl resolves it from its cwd
    config = verl_config(
        "data.train_batch_size=4", "data.dataloader_num_workers=0", "data.seed=7",
        f"data.sampler.class_path={sampler_file}", "data.sampler.class_name=BalancedLabelSampler",
    )
    ds = dataset(folder / "train.parquet", processing, config)
    sampler = create_rl_sampler(config.data, ds)
    assert type(sampler).__name__ == "BalancedLabelSampler" and isinstance(sampler, AbstractSampler)
    labels = [rm["ground_truth"] for rm in ds.dataframe["reward_model"]]
    order = list(sampler)
    assert len(order) == len(sampler) >= 4
    loader = DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=collate_fn, num_workers=0, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(order) // 4
    for batch in batches:
        assert tuple(batch["input_ids"].shape) == (4, 2048)
        truths = [rm["ground_truth"] for rm in batch["reward_model"]]
        assert sorted(truths) == ["no", "no", "yes", "yes"]
    assert sorted(set(labels)) == ["no", "yes"]

    busy = verl_config(
        "data.train_batch_size=4", f"data.sampler.class_path={sampler_file}", "data.sampler.class_name=BalancedLabelSampler",
    )
    with pytest.raises(AssertionError, match="num_workers must be 0"):
        create_rl_sampler(busy.data, ds)
