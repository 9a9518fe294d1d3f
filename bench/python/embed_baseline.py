"""Embedding baseline for `npm run bench -- twin:embed`: onnxruntime-python + PIL doing the
same work as twinflow's embed/images on the same ONNX file and images (decode, stretch to
size x size, scale/mean/std, batches, L2-normalise, float32 rows to a file).

usage: embed_baseline.py MODEL SPEC LIST OUT BATCH THREADS  -> prints {"seconds": ...}
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def main() -> None:
    model, spec_file, list_file, out, batch, threads = sys.argv[1:7]
    spec = json.load(open(spec_file))
    files = [l.strip() for l in open(list_file) if l.strip()]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    size = spec["size"]
    scale = {"0..1": lambda a: a / 255.0, "0..255": lambda a: a, "-1..1": lambda a: a / 127.5 - 1}[spec["scale"]]
    mean = np.array(spec["mean"], dtype=np.float32)
    std = np.array(spec["std"], dtype=np.float32)
    start = time.perf_counter()
    with open(out, "wb") as sink:
        for i in range(0, len(files), int(batch)):
            chunk = files[i : i + int(batch)]
            pixels = [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.LANCZOS), dtype=np.float32) for f in chunk]
            x = (scale(np.stack(pixels)) - mean) / std
            if spec["layout"] == "NCHW":
                x = x.transpose(0, 3, 1, 2)
            rows = session.run([spec["outputName"]], {spec["inputName"]: np.ascontiguousarray(x, dtype=np.float32)})[0]
            rows = rows.reshape(len(chunk), -1)
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            sink.write(rows.astype("<f4").tobytes())
    print(json.dumps({"seconds": time.perf_counter() - start, "images": len(files)}))


if __name__ == "__main__":
    main()
