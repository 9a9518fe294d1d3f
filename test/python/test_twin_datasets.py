"""Loads twin/assemble's exports with Hugging Face `datasets` and opens their images the way
each consumer does, from a working directory that is not the dataset folder.

Scenarios:
- Every config in the generated card's YAML header loads with
  `datasets.load_dataset(folder, name)`: folder mode with every export, embed mode with
  verl alone, and sharegpt alone; each split has the rows stats.json counts.
- default (the Twin rows as parquet): image_1 and image_2 decode to PIL images holding the
  bytes of the folder copies that the JSONL rows name, row for row.
- verl: each image is a {bytes, path} dict, opened from its bytes as verl's process_image
  does; no image is looked up relative to the working directory.
- LLaMA-Factory: the sharegpt records read with the json builder (as LLaMA-Factory reads
  them); each image path joined to media_dir (which defaults to dataset_dir, the folder)
  opens.
"""

import io
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no Hub; never wait on the network

import datasets as hf
import pytest
import yaml
from PIL import Image

from test_twin_export import build_exports, rows_of

hf.disable_progress_bars()


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return build_exports(tmp_path_factory)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory with no images/ folder, and a `datasets` cache of its own."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "hf-cache"


def card_configs(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    _, header, _ = text.split("---\n", 2)
    return yaml.safe_load(header)["configs"]


def load(folder, name, cache):
    assert not os.path.exists("images") and os.path.abspath(os.getcwd()) != str(folder)
    return hf.load_dataset(str(folder), name, cache_dir=str(cache))


def verl_open(image):
    """verl/utils/dataset/vision_utils.py process_image, up to qwen_vl_utils.fetch_image."""
    if isinstance(image, Image.Image):
        return image
    assert "bytes" in image and "image" not in image
    return Image.open(io.BytesIO(image["bytes"]))


def decoded(image):
    image.load()
    assert image.size == (32, 32)
    return image


def counts(folder):
    return {split: c["total"] for split, c in json.loads((folder / "stats.json").read_text())["counts"].items()}


@pytest.mark.parametrize("mode, names", [("folder", ["default", "verl"]), ("embed", ["verl"]), ("sharegpt", ["sharegpt"])])
def test_every_config_in_the_card_loads_with_datasets(exports, elsewhere, mode, names):
    folder = exports[mode]
    configs = card_configs(folder)
    assert [c["config_name"] for c in configs] == names
    for config in configs:
        ds = load(folder, config["config_name"], elsewhere)
        assert {s: len(ds[s]) for s in ds} == counts(folder)
        assert counts(folder)["train"] > 0


def test_the_default_config_gives_the_twin_rows_with_decoded_images(exports, elsewhere):
    folder = exports["folder"]
    ds = load(folder, "default", elsewhere)
    assert isinstance(ds["train"].features["image_1"], hf.Image)
    for split in ["train", "eval"]:
        rows = rows_of(folder / f"{split}.jsonl")
        meta = rows_of(folder / f"{split}.meta.jsonl")
        raw = ds[split].cast_column("image_1", hf.Image(decode=False)).cast_column("image_2", hf.Image(decode=False))
        for rec, row, m in zip(raw, rows, meta):
            assert {c: rec[c] for c in ["question", "answer"]} == {c: row[c] for c in ["question", "answer"]}
            assert {c: rec[c] for c in m} == m
            for column in ["image_1", "image_2"]:
                assert rec[column]["bytes"] == (folder / row[column]).read_bytes()
    first = ds["train"][0]
    assert isinstance(first["image_1"], Image.Image) and decoded(first["image_1"])
    assert decoded(first["image_2"])


@pytest.mark.parametrize("mode", ["folder", "embed"])
def test_verl_images_open_from_their_bytes_wherever_verl_runs(exports, elsewhere, mode):
    ds = load(exports[mode], "verl", elsewhere)
    for split in ["train", "eval"]:
        for rec in ds[split].select(range(min(5, len(ds[split])))):
            assert len(rec["images"]) == rec["prompt"][0]["content"].count("<image>") == 2
            for image in rec["images"]:
                assert not os.path.exists(image["path"])
                decoded(verl_open(image))


@pytest.mark.parametrize("mode", ["folder", "sharegpt"])
def test_llama_factory_finds_the_sharegpt_images_through_media_dir(exports, elsewhere, mode):
    folder = exports[mode]
    info = json.loads((folder / "dataset_info.json").read_text())
    media_dir = str(folder)  # LLaMA-Factory: media_dir defaults to dataset_dir
    for name, split in [("twin", "train"), ("twin_eval", "eval")]:
        entry = info[name]
        ds = hf.load_dataset("json", data_files=str(folder / entry["file_name"]), split="train", cache_dir=str(elsewhere))
        assert len(ds) == counts(folder)[split]
        for rec in ds.select(range(min(5, len(ds)))):
            images = rec[entry["columns"]["images"]]
            assert rec["messages"][0]["content"].count("<image>") == len(images) == 2
            for path in images:
                assert not os.path.isfile(path)  # only through media_dir, as converter.py's _find_medias joins it
                with Image.open(os.path.join(media_dir, path)) as im:
                    decoded(im)
