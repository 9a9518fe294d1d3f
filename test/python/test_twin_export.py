"""Reads twin/assemble's exports back the way their consumers do.

Scenarios:
- The verl parquet has verl's columns with real nested types (list<struct>, struct), as
  many rows as the Twin rows JSONL, two <image> tokens per prompt, yes/no ground truth
  that agrees with the rows, and extra_info naming split, index, pair and kind.
- Every verl image is its bytes, in folder mode too (verl has no setting for a folder that
  relative paths would be joined to); they are the bytes of the folder's copy it names.
- Folder mode: every path in the JSON rows resolves inside the dataset folder and decodes
  with PIL, and the folder holds exactly the images the rows use.
- Embed mode: image bytes inside the parquet decode with PIL, no folder needed.
- The Twin rows have exactly the published shape; sharegpt has one <image> per image and
  is registered in dataset_info.json.
- gpu/twin_sampler.py draws batches with as many yes as no labels from the verl parquet.

The datasets are built by test/python/make_twin_fixture.ts (npx tsx), once per session
(build_exports; test_twin_datasets.py loads them with `datasets`).
"""

import io
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
_BUILT = {}


def build_exports(tmp_path_factory):
    """The fixture datasets by name (folder, embed, sharegpt), built once however many test modules ask."""
    if "exports" not in _BUILT:
        out = tmp_path_factory.mktemp("twin")
        done = subprocess.run(
            ["npx", "tsx", "test/python/make_twin_fixture.ts", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        outputs = json.loads(done.stdout.strip().splitlines()[-1])
        _BUILT["exports"] = {mode: Path(o["dataset"]) for mode, o in outputs.items()}
    return _BUILT["exports"]


@pytest.fixture(scope="session")
def datasets(tmp_path_factory):
    return build_exports(tmp_path_factory)


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_verl_parquet_has_verl_columns_with_nested_types(datasets, split):
    table = pq.read_table(datasets["folder"] / f"{split}.parquet")
    schema = table.schema
    assert schema.names == ["data_source", "prompt", "images", "ability", "reward_model", "extra_info"]
    prompt = schema.field("prompt").type
    assert pa.types.is_list(prompt) and pa.types.is_struct(prompt.value_type)
    assert [f.name for f in prompt.value_type] == ["role", "content"]
    images = schema.field("images").type
    assert pa.types.is_list(images) and [f.name for f in images.value_type] == ["bytes", "path"]
    assert images.value_type.field("bytes").type == pa.binary()
    assert pa.types.is_struct(schema.field("reward_model").type)
    extra = schema.field("extra_info").type
    assert [f.name for f in extra] == ["split", "index", "pair_id", "kind", "category", "instance_1", "instance_2"]
    assert pa.types.is_int64(extra.field("index").type)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_verl_rows_agree_with_the_twin_rows(datasets, split):
    records = pq.read_table(datasets["folder"] / f"{split}.parquet").to_pylist()
    rows = rows_of(datasets["folder"] / f"{split}.jsonl")
    assert len(records) == len(rows) > 0
    for k, (rec, row) in enumerate(zip(records, rows)):
        assert rec["data_source"] == "twin" and rec["ability"] == "vision"
        assert len(rec["prompt"]) == 1 and rec["prompt"][0]["role"] == "user"
        content = rec["prompt"][0]["content"]
        assert content.count("<image>") == 2
        assert content == "<image>\n<image>\n\n" + row["question"]
        assert rec["reward_model"] == {"style": "rule", "ground_truth": row["answer"]}
        assert row["answer"] in {"yes", "no"}
        assert [i["path"] for i in rec["images"]] == [row["image_1"], row["image_2"]]
        assert rec["extra_info"]["split"] == split and rec["extra_info"]["index"] == k
        assert rec["extra_info"]["kind"] in {"positive", "hard-negative", "generated-negative"}
        assert (rec["extra_info"]["kind"] == "positive") == (row["answer"] == "yes")


def test_the_balanced_sampler_draws_even_yes_no_batches_from_the_verl_parquet(datasets):
    from loading import load_file

    module = load_file("gpu/twin_sampler.py", "twin_sampler")
    records = pq.read_table(datasets["folder"] / "train.parquet").to_pylist()
    labels = module.labels_of(records)
    batch = 4
    sampler = module.BalancedLabelSampler(data_source=records, data_config={"train_batch_size": batch, "seed": 0})
    order = list(sampler)
    assert len(order) >= batch
    assert all(c == {"yes": 2, "no": 2} for c in module.check_balanced(order, labels, batch))


def test_every_image_path_resolves_and_decodes(datasets):
    folder = datasets["folder"]
    seen = set()
    for split in ["train", "eval"]:
        for row in rows_of(folder / f"{split}.jsonl"):
            seen.update([row["image_1"], row["image_2"]])
    assert seen
    for rel in seen:
        path = folder / rel
        assert path.is_file(), rel
        with Image.open(path) as im:
            im.load()
            assert im.size == (32, 32)
    assert len(list((folder / "images").iterdir())) == len(seen)


def test_folder_mode_verl_images_are_the_bytes_of_the_copies_they_name(datasets):
    folder = datasets["folder"]
    for split in ["train", "eval"]:
        for rec in pq.read_table(folder / f"{split}.parquet", columns=["images"]).to_pylist():
            for image in rec["images"]:
                assert set(image) == {"bytes", "path"}
                assert image["bytes"] == (folder / image["path"]).read_bytes()


def test_embedded_image_bytes_decode_without_a_folder(datasets):
    embed = datasets["embed"]
    assert not (embed / "images").exists()
    table = pq.read_table(embed / "train.parquet")
    images = table.schema.field("images").type.value_type
    assert images.field("bytes").type == pa.binary() and images.field("path").type == pa.string()
    for rec in table.to_pylist():
        assert len(rec["images"]) == 2
        for image in rec["images"]:
            with Image.open(io.BytesIO(image["bytes"])) as im:
                im.load()
                assert im.format.lower() in image["path"].replace("jpg", "jpeg")


def test_twin_rows_have_exactly_the_published_shape(datasets):
    for split in ["train", "eval"]:
        rows = rows_of(datasets["folder"] / f"{split}.jsonl")
        meta = rows_of(datasets["folder"] / f"{split}.meta.jsonl")
        assert len(rows) == len(meta)
        for row in rows:
            assert list(row) == ["question", "answer", "image_1", "image_2"]
            assert row["image_1"].startswith("images/") and row["image_1"] != row["image_2"]


def test_sharegpt_matches_images_and_is_registered(datasets):
    folder = datasets["folder"]
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["twin"]["file_name"] == "train.sharegpt.json"
    assert info["twin"]["formatting"] == "sharegpt"
    records = json.loads((folder / info["twin"]["file_name"]).read_text())
    assert len(records) == len(rows_of(folder / "train.jsonl"))
    for rec in records:
        user, assistant = rec["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert user["content"].count("<image>") == len(rec["images"]) == 2
        assert assistant["content"] in {"<answer>yes</answer>", "<answer>no</answer>"}
        assert all((folder / p).is_file() for p in rec["images"])
