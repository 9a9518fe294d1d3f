"""CIFAR-100's python pickles into raw RGB files for probe/encoder.

    python gpu/probe_cifar.py ROOT OUT_DIR

ROOT is the `cifar-100-python` folder or the folder holding it (`train`, `test`, `meta`:
protocol-2 pickles of dicts with bytes keys; `data` is N x 3072 uint8, channel-major 32 x 32,
`fine_labels` the class of each row, `meta`'s `fine_label_names` the 100 names). OUT_DIR
gets `train.rgb` and `test.rgb` (N x 32 x 32 x 3 uint8, pixel-major, as image decoders give
pixels) and `cifar.json` ({"classes", "train", "test"}: names and each row's label).

A file that is missing or is not such a pickle exits 2 with one line saying which and why.
Needs numpy (the pickles hold numpy arrays).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np


class CifarError(Exception):
    pass


def _get(batch: dict, name: str):
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise KeyError(name)


def load(file: Path) -> dict:
    if not file.is_file():
        raise CifarError(f"{file} is missing: expected CIFAR-100's python version (cifar-100-python.tar.gz, unpacked)")
    try:
        with file.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as err:  # any unpickling failure: truncated, not a pickle, ...
        raise CifarError(f"{file} is not a readable pickle ({type(err).__name__}: {err}); download cifar-100-python.tar.gz again") from err
    if not isinstance(batch, dict):
        raise CifarError(f"{file} holds a {type(batch).__name__}, not CIFAR-100's dict")
    return batch


def split(file: Path, classes: int) -> tuple[np.ndarray, list[int]]:
    batch = load(file)
    try:
        data = np.asarray(_get(batch, "data"))
        labels = [int(x) for x in _get(batch, "fine_labels")]
    except (KeyError, TypeError, ValueError) as err:
        raise CifarError(f"{file} has no usable {err} entry (CIFAR-100 batches have data and fine_labels)") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != len(labels):
        raise CifarError(f"{file}: data is {data.dtype} {list(data.shape)} for {len(labels)} labels; expected uint8 N x 3072")
    if labels and (min(labels) < 0 or max(labels) >= classes):
        raise CifarError(f"{file}: fine_labels outside 0..{classes - 1}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root, out = Path(argv[0]), Path(argv[1])
    if (root / "cifar-100-python").is_dir():
        root = root / "cifar-100-python"
    try:
        meta = load(root / "meta")
        try:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(meta, "fine_label_names")]
        except KeyError as err:
            raise CifarError(f"{root / 'meta'} has no fine_label_names") from err
        out.mkdir(parents=True, exist_ok=True)
        record = {"classes": classes}
        for name in ("train", "test"):
            pixels, labels = split(root / name, len(classes))
            np.ascontiguousarray(pixels).tofile(out / f"{name}.rgb")
            record[name] = labels
    except CifarError as err:
        print(f"probe_cifar: {err}", file=sys.stderr)
        return 2
    (out / "cifar.json").write_text(json.dumps(record))
    print(json.dumps({"classes": len(classes), "train": len(record["train"]), "test": len(record["test"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
