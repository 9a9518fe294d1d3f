"""Baseline of bench/embed-throughput.ts: onnxruntime-python + PIL doing what twinflow's
embed/images does, on the same ONNX file and the same images.

Preprocessing follows activities/embed/embed-images.ts: decode to 3-channel sRGB, stretch to
size x size (no crop, no pad), scale the bytes (0..1, 0..255 or -1..1), subtract mean, divide
by std, lay out NHWC or NCHW as the spec says; rows L2-normalised and written as
little-endian float32, one per image, in list order.

The stretch copies what sharp 0.35 (libvips) does for `fit: 'fill'`, measured with impulse
images: axes that shrink are reduced with Lanczos-3 (same weights as PIL's LANCZOS), then, if
any axis must grow, an affine pass with a Catmull-Rom cubic maps output pixel i to input
position i * in/out - 0.5 on BOTH axes (a half-pixel shift on an axis already at size).
A plain PIL Lanczos stretch differs by up to 16 grey levels on images shorter than `size`
(embedding cosine 0.89 on a page of text, ~0.965 on ordinary photos); this one differs by
about 0.2 on average (cosine >= 0.999).

The session is created inside the timing, as the activity creates its own on every call;
its creation time is also reported on its own. Imports are outside the timing.

    python embed_throughput.py MODEL SPEC LIST OUT BATCH THREADS
    -> prints {"seconds": ..., "session_seconds": ..., "run_seconds": ..., "images": ...}
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

SCALES = {
    "0..1": lambda a: a / np.float32(255),
    "0..255": lambda a: a,
    "-1..1": lambda a: a / np.float32(127.5) - np.float32(1),
}


def open_session(model, threads):
    """Same options as embed-images.ts openSession: N intra-op threads, no spinning."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def catmull_rom(d):
    d = np.abs(d)
    return np.where(d < 1, 1.5 * d**3 - 2.5 * d**2 + 1, np.where(d < 2, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2, 0))


def upsize_matrix(n, size):
    """Weights taking n samples to size: output i reads input i * n / size - 0.5, edges repeated."""
    pos = np.arange(size) * (n / size) - 0.5
    base = np.floor(pos).astype(int)
    m = np.zeros((size, n), dtype=np.float32)
    for tap in range(-1, 3):
        np.add.at(m, (np.arange(size), np.clip(base + tap, 0, n - 1)), catmull_rom(pos - (base + tap)))
    return m


def stretch(img, size):
    """sharp's `resize(size, size, { fit: 'fill' })`: Lanczos reduce, then cubic upsize."""
    w, h = img.size
    nw, nh = min(w, size), min(h, size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.LANCZOS)
    x = np.asarray(img, dtype=np.float32)
    if (nw, nh) == (size, size):
        return x
    # PIL's own BICUBIC transform is not Catmull-Rom (its side lobes are twice as deep), so the
    # upsize is two small matrix products, rounded back to bytes as libvips does.
    x = np.tensordot(upsize_matrix(nh, size), x, axes=(1, 0))
    x = np.tensordot(upsize_matrix(nw, size), x, axes=(1, 1)).transpose(1, 0, 2)
    return np.clip(np.rint(x), 0, 255)


def decode(path, size):
    return stretch(Image.open(path).convert("RGB"), size)


def preprocess(paths, spec):
    size = spec["size"]
    x = np.stack([decode(p, size) for p in paths])
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    x = (SCALES[spec["scale"]](x) - mean) / std
    if spec["layout"] == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def embed(session, spec, files, out, batch):
    """Embeds and writes every row; returns the seconds spent inside session.run alone."""
    run_seconds = 0.0
    with open(out, "wb") as sink:
        for i in range(0, len(files), batch):
            chunk = files[i : i + batch]
            x = preprocess(chunk, spec)
            started = time.perf_counter()
            rows = session.run([spec["outputName"]], {spec["inputName"]: x})[0]
            run_seconds += time.perf_counter() - started
            rows = rows.reshape(len(chunk), -1)
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            sink.write(rows.astype("<f4").tobytes())
    return run_seconds


def main():
    model, spec_file, list_file, out, batch, threads = sys.argv[1:7]
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    with open(list_file, encoding="utf-8") as f:
        files = [line.strip() for line in f if line.strip()]
    start = time.perf_counter()
    session = open_session(model, int(threads))
    session_seconds = time.perf_counter() - start
    run_seconds = embed(session, spec, files, out, int(batch))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "session_seconds": session_seconds, "run_seconds": run_seconds, "images": len(files)}))


if __name__ == "__main__":
    main()
