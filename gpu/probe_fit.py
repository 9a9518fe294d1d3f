"""The linear probe and kNN of probe/encoder (Table 5) on one dataset's frozen features.

    python gpu/probe_fit.py FEATURES_DIR OUT.json [--seed 0] [--k 20] [--temperature 0.07]
        [--C 0.1,1,10,100] [--val-fraction 0.2] [--max-iter 1000]

FEATURES_DIR holds `train.f32` and `test.f32` (little-endian float32, row-major, N x dims, no
header) and `labels.json` ({"classes": [...], "dims": D, "train": [class per row], "test": [...]}).

Features are L2-normalised (in float64). Linear probe: scikit-learn's LogisticRegression
(lbfgs, multinomial), C picked by accuracy on a stratified, seeded validation split of train
(the smallest C among ties), then refitted on all of train. kNN: cosine similarity to every
train row, the k nearest vote with weight exp(cosine / temperature), top-1. Writes OUT.json
with both test accuracies (%), the chosen C, each C's validation accuracy and every test
prediction. Inputs it cannot use exit 2 with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier


class FitError(Exception):
    pass


def load(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    labels = json.loads((folder / "labels.json").read_text())
    dims = int(labels["dims"])

    def matrix(name: str) -> np.ndarray:
        raw = np.fromfile(folder / f"{name}.f32", dtype="<f4")
        rows = len(labels[name])
        if raw.size != rows * dims:
            raise FitError(f"{folder / (name + '.f32')}: {raw.size} floats, expected {rows} rows x {dims}")
        return raw.reshape(rows, dims).astype(np.float64)

    return matrix("train"), np.asarray(labels["train"]), matrix("test"), np.asarray(labels["test"]), labels["classes"]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def choose_c(x: np.ndarray, y: np.ndarray, grid: list[float], seed: int, val_fraction: float, max_iter: int) -> tuple[float, dict[str, float]]:
    if len(grid) == 1:
        return grid[0], {}
    counts = np.bincount(y)
    scarce = [int(c) for c in np.flatnonzero((counts > 0) & (counts < 2))]
    if scarce:
        raise FitError(f"class {scarce[0]} has one training image: choosing C on a validation split needs two per class; give a single C")
    try:
        x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=val_fraction, stratify=y, random_state=seed)
    except ValueError as err:
        raise FitError(f"cannot carve a stratified validation split of {val_fraction} from {len(y)} training images ({err}); raise valFraction or give a single C") from err
    scores = {}
    for c in grid:
        model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x_fit, y_fit)
        scores[repr(c)] = float((model.predict(x_val) == y_val).mean())
    best = max(scores.values())
    return min(c for c in grid if scores[repr(c)] == best), scores


def knn_predict(train: np.ndarray, y: np.ndarray, test: np.ndarray, k: int, temperature: float) -> np.ndarray:
    knn = KNeighborsClassifier(n_neighbors=min(k, len(y)), metric="cosine", algorithm="brute", weights=lambda d: np.exp((1.0 - d) / temperature))
    return knn.fit(train, y).predict(test)


def fit(folder: Path, seed: int, k: int, temperature: float, grid: list[float], val_fraction: float, max_iter: int) -> dict:
    x, y, xt, yt, classes = load(folder)
    if len(np.unique(y)) < 2:
        raise FitError(f"{folder}: the training split has {len(np.unique(y))} class; a probe needs two or more")
    x, xt = l2_normalise(x), l2_normalise(xt)
    c, validation = choose_c(x, y, grid, seed, val_fraction, max_iter)
    linear = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x, y).predict(xt)
    knn = knn_predict(x, y, xt, k, temperature)
    acc = lambda p: 100.0 * int((p == yt).sum()) / len(yt) if len(yt) else 0.0
    return {
        "linear": acc(linear), "knn": acc(knn), "C": c, "train": len(y), "test": len(yt), "classes": len(classes), "dims": x.shape[1],
        "validation": validation, "predictions": {"linear": linear.tolist(), "knn": knn.tolist()},
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("features", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--C", default="0.1,1,10,100")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--max-iter", type=int, default=1000)
    a = p.parse_args(argv)
    try:
        result = fit(a.features, a.seed, a.k, a.temperature, [float(c) for c in a.C.split(",")], a.val_fraction, a.max_iter)
    except (FitError, FileNotFoundError) as err:
        print(f"probe_fit: {err}", file=sys.stderr)
        return 2
    a.out.write_text(json.dumps(result))
    print(json.dumps({k: result[k] for k in ("linear", "knn", "C", "train", "test")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
