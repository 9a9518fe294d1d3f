"""Bench probe (a): the linear probe and kNN done with scikit-learn alone, for bench/probe.ts.

    python bench/python/probe_sklearn.py make DIR [--rows 20000] [--dims 1792] [--classes 20] [--seed 0]
    python bench/python/probe_sklearn.py fit DIR --C 1,10 [--seed 0] [--k 20] [--temperature 0.07]

`make` writes clustered synthetic features in probe/encoder's exchange format (train.f32,
test.f32, labels.json; a fifth of the rows are the test split). `fit` does what
gpu/probe_fit.py does, written plainly: L2-normalise, choose C by LogisticRegression on a
stratified 20% validation split, refit on all of train, KNeighborsClassifier (cosine, k,
weights exp(cos / T)); prints {"seconds", "linear", "knn", "C"} (seconds: after imports).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def make(folder: Path, rows: int, dims: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dims)).astype(np.float32)
    y = rng.integers(0, classes, size=rows)
    x = centres[y] + rng.normal(scale=6.0, size=(rows, dims)).astype(np.float32)
    test = np.arange(rows) % 5 == 0
    folder.mkdir(parents=True, exist_ok=True)
    x[~test].astype("<f4").tofile(folder / "train.f32")
    x[test].astype("<f4").tofile(folder / "test.f32")
    labels = {"classes": [f"c{i}" for i in range(classes)], "dims": dims, "train": y[~test].tolist(), "test": y[test].tolist()}
    (folder / "labels.json").write_text(json.dumps(labels))


def fit(folder: Path, grid: list[float], seed: int, k: int, temperature: float) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    started = time.perf_counter()
    labels = json.loads((folder / "labels.json").read_text())
    dims = labels["dims"]
    x = np.fromfile(folder / "train.f32", dtype="<f4").reshape(-1, dims).astype(np.float64)
    xt = np.fromfile(folder / "test.f32", dtype="<f4").reshape(-1, dims).astype(np.float64)
    y, yt = np.asarray(labels["train"]), np.asarray(labels["test"])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xt /= np.linalg.norm(xt, axis=1, keepdims=True)
    xf, xv, yf, yv = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    scores = {c: (LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(xf, yf).predict(xv) == yv).mean() for c in grid}
    best = min(c for c in grid if scores[c] == max(scores.values()))
    linear = LogisticRegression(C=best, max_iter=1000, random_state=seed).fit(x, y).predict(xt)
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1 - d) / temperature)).fit(x, y).predict(xt)
    return {"seconds": time.perf_counter() - started, "linear": 100.0 * (linear == yt).mean(), "knn": 100.0 * (knn == yt).mean(), "C": best}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["make", "fit"])
    p.add_argument("dir", type=Path)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--dims", type=int, default=1792)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--C", default="1,10")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--temperature", type=float, default=0.07)
    a = p.parse_args(argv)
    if a.mode == "make":
        make(a.dir, a.rows, a.dims, a.classes, a.seed)
    else:
        print(json.dumps(fit(a.dir, [float(c) for c in a.C.split(",")], a.seed, a.k, a.temperature)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
