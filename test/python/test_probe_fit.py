"""gpu/probe_fit.py, gpu/probe_cifar.py and gpu/probe_features.py, probe/encoder's Python side.

Scenarios:
- On clustered synthetic features the linear probe is near perfect; kNN's predictions equal a
  numpy brute-force reference (cosine, k nearest, votes exp(cos / T), ties to the lower class)
- C is the grid value with the best validation accuracy (the smallest among ties); one C skips
  the validation split; the same seed gives the same record
- Inputs it cannot use exit 2 with one probe_fit line: a class with one training image while
  choosing C, a feature file of the wrong size
- probe_cifar turns CIFAR-100 pickles (bytes keys, channel-major rows) into pixel-major RGB and
  labels; a corrupt pickle exits 2 naming the file
- probe_features (toy Qwen2.5-VL, run with .venv/verl's Python on CPU): one mean-pooled row per
  image, an image given as raw RGB gives the same row as the same pixels as a PNG, the same
  input gives the same bytes, a missing image exits 2 naming it. On a GPU host:
  PROBE_TORCH_PYTHON=python PROBE_DEVICE=cuda python -m pytest test/python/test_probe_fit.py -k vision_tower
  (bf16; rows compared within a tolerance there, since GPU kernels need not repeat bit for bit)
"""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIT = ROOT / "gpu" / "probe_fit.py"
CIFAR = ROOT / "gpu" / "probe_cifar.py"
FEATURES = ROOT / "gpu" / "probe_features.py"
TORCH_PYTHON = Path(os.environ.get("PROBE_TORCH_PYTHON", ROOT / ".venv" / "verl" / "bin" / "python"))
DEVICE = os.environ.get("PROBE_DEVICE", "cpu")


def write_features(folder: Path, train, ytrain, test, ytest, classes: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.asarray(train, dtype="<f4").tofile(folder / "train.f32")
    np.asarray(test, dtype="<f4").tofile(folder / "test.f32")
    labels = {"classes": [f"c{i}" for i in range(classes)], "dims": int(np.asarray(train).shape[1]),
              "train": [int(y) for y in ytrain], "test": [int(y) for y in ytest]}
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


def clustered(seed: int, classes=6, per_class=30, dims=32, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dims))
    y = np.repeat(np.arange(classes), per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dims))
    return x, y


def fit(folder: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*')))}.json"
    done = subprocess.run([sys.executable, str(FIT), str(folder), str(out), *args], capture_output=True, text=True)
    return done, json.loads(out.read_text()) if done.returncode == 0 else None


def knn_reference(train, y, test, k, temperature):
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)
    sims = unit(np.asarray(train, np.float64)) @ unit(np.asarray(test, np.float64)).T
    out = []
    for q in range(sims.shape[1]):
        order = sorted(range(len(y)), key=lambda i: (-sims[i, q], i))[:k]
        votes = {}
        for i in order:
            votes[int(y[i])] = votes.get(int(y[i]), 0.0) + float(np.exp(sims[i, q] / temperature))
        out.append(min(votes, key=lambda c: (-votes[c], c)))
    return out


def test_linear_probe_and_knn_on_clustered_features(tmp_path):
    x, y = clustered(0, per_class=40)  # every fourth row (10 of each class) is the test split
    test = np.arange(len(y)) % 4 == 0
    x, y, xt, yt = x[~test], y[~test], x[test], y[test]
    folder = write_features(tmp_path / "f", x, y, xt, yt, 6)
    done, result = fit(folder, tmp_path, "--C", "0.1,1,10", "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert result["linear"] >= 90 and result["train"] == 180 and result["test"] == 60 and result["dims"] == 32
    assert result["predictions"]["knn"] == knn_reference(x, y, xt, 20, 0.07)
    assert result["knn"] == 100.0 * sum(p == t for p, t in zip(result["predictions"]["knn"], yt)) / len(yt)
    best = max(result["validation"].values())
    assert result["C"] == min(float(c) for c, v in result["validation"].items() if v == best)
    _, again = fit(folder, tmp_path, "--C", "0.1,1,10", "--seed", "3")
    assert again == result


def test_knn_with_noisy_classes_still_matches_the_reference(tmp_path):
    x, y = clustered(5, classes=4, per_class=25, dims=16, spread=3.0)
    xt, yt = clustered(6, classes=4, per_class=10, dims=16, spread=3.0)
    folder = write_features(tmp_path / "f", x, y, xt, yt, 4)
    for k, temperature in ((20, 0.07), (5, 0.5)):
        done, result = fit(folder, tmp_path, "--C", "1", "--k", str(k), "--temperature", str(temperature))
        assert done.returncode == 0, done.stderr
        assert result["predictions"]["knn"] == knn_reference(x, y, xt, k, temperature)
        assert result["validation"] == {} and result["C"] == 1.0


def test_inputs_it_cannot_use_exit_2_with_a_reason(tmp_path):
    x, y = clustered(0, classes=3, per_class=4)
    y = y.copy()
    y[0] = 5  # class 5 has one training image
    folder = write_features(tmp_path / "f", x, y, x[:3], y[:3], 6)
    done, _ = fit(folder, tmp_path, "--C", "1,10")
    assert done.returncode == 2
    assert "probe_fit: class 5 has one training image" in done.stderr
    (folder / "test.f32").write_bytes(b"\0" * 12)
    done, _ = fit(folder, tmp_path, "--C", "1")
    assert done.returncode == 2 and "test.f32: 3 floats, expected 3 rows x 32" in done.stderr


def write_cifar(folder: Path, pixels: np.ndarray, labels: list[int]) -> None:
    folder.mkdir(parents=True)
    rows = pixels.transpose(0, 3, 1, 2).reshape(len(labels), 3072)  # HWC -> channel-major rows
    for split in ("train", "test"):
        with open(folder / split, "wb") as f:
            pickle.dump({b"data": rows, b"fine_labels": labels, b"batch_label": split.encode()}, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"n{i}".encode() for i in range(100)]}, f, protocol=2)


def test_cifar_pickles_become_pixel_major_rgb(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    write_cifar(tmp_path / "cifar-100-python", pixels, [4, 0, 99])
    done = subprocess.run([sys.executable, str(CIFAR), str(tmp_path), str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rgb = np.fromfile(tmp_path / "out" / "train.rgb", dtype=np.uint8).reshape(3, 32, 32, 3)
    assert np.array_equal(rgb, pixels)
    record = json.loads((tmp_path / "out" / "cifar.json").read_text())
    assert record["train"] == [4, 0, 99] and record["classes"][99] == "n99" and len(record["classes"]) == 100
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"\x80\x02}q\x00(trunc")
    done = subprocess.run([sys.executable, str(CIFAR), str(tmp_path), str(tmp_path / "out2")], capture_output=True, text=True)
    assert done.returncode == 2 and "cifar-100-python/test is not a readable pickle" in done.stderr


@pytest.mark.skipif(not (TORCH_PYTHON.exists() or "PROBE_TORCH_PYTHON" in os.environ),
                    reason="torch/transformers live in .venv/verl (npm run setup unless TWINFLOW_VERL_TORCH=0); PROBE_TORCH_PYTHON names another")
def test_features_of_the_toy_vision_tower(tmp_path):
    from PIL import Image

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    subprocess.run([str(TORCH_PYTHON), str(ROOT / "gpu" / "toy_qwen2_5_vl.py"), str(tmp_path / "toy")], check=True, capture_output=True, env=env)
    pixels = np.random.default_rng(1).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    pixels.tofile(tmp_path / "two.rgb")
    Image.fromarray(pixels[1]).save(tmp_path / "one.png")
    Image.new("RGB", (80, 60), (200, 30, 30)).save(tmp_path / "red.jpg")
    items = [{"rgb": str(tmp_path / "two.rgb"), "index": 1, "size": 32}, {"file": str(tmp_path / "one.png")}, {"file": str(tmp_path / "red.jpg")}]
    (tmp_path / "images.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))

    def run(out: str, listing="images.jsonl"):
        dtype = "float32" if DEVICE == "cpu" else "bfloat16"
        return subprocess.run([str(TORCH_PYTHON), str(FEATURES), str(tmp_path / "toy"), str(tmp_path / listing), str(tmp_path / out),
                               "--device", DEVICE, "--dtype", dtype, "--batch-size", "2"], capture_output=True, text=True, env=env)

    done = run("a.f32")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"rows": 3, "dims": 64}
    assert "progress 2/3" in done.stdout
    rows = np.fromfile(tmp_path / "a.f32", dtype="<f4").reshape(3, 64)
    same = np.array_equal if DEVICE == "cpu" else (lambda a, b: np.allclose(a, b, rtol=0.02, atol=0.02))
    assert same(rows[0], rows[1]) and not np.allclose(rows[0], rows[2])
    assert run("b.f32").returncode == 0
    assert same(rows, np.fromfile(tmp_path / "b.f32", dtype="<f4").reshape(3, 64))
    if DEVICE == "cpu":
        assert (tmp_path / "a.f32").read_bytes() == (tmp_path / "b.f32").read_bytes()
    (tmp_path / "missing.jsonl").write_text(json.dumps({"file": str(tmp_path / "nope.jpg")}) + "\n")
    missing = run("c.f32", "missing.jsonl")
    assert missing.returncode == 2 and "probe_features: cannot open" in missing.stderr and "nope.jpg" in missing.stderr
