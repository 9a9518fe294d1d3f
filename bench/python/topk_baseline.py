"""The faiss-cpu and numpy baselines of `npm run bench -- twin:topk`.

Reads the same float32 matrix as twinflow's top-k (raw little-endian, row-major, rows x
DIMS) and finds, for every row, its K most similar rows by inner product over all rows
(itself included, as on twinflow's side):

  faiss  IndexFlatIP: add every row, then search every row (faiss's blocked BLAS search).
  numpy  per block of 1,024 query rows: one matmul against all rows, argpartition for the
         K best, then those K sorted by score (ties by the lower row).

Both use every core the process may use (OpenMP / the BLAS pool). Timings exclude reading
the file; CPU seconds (all threads) are reported too, since a shared machine's
wall times wander. Writes each method's indices as int32 rows x K to OUT_PREFIX.<method>.i32 and
prints one JSON line: seconds and CPU seconds per method, threads, and the first rows' results as a sample.

    python topk_baseline.py MATRIX.f32 DIMS K OUT_PREFIX
"""

import json
import sys
import time

import faiss
import numpy as np

BLOCK = 1024
SAMPLE = 3


def faiss_topk(x, k):
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    scores, ids = index.search(x, k)
    return ids.astype(np.int32), scores


def numpy_topk(x, k):
    n = x.shape[0]
    ids = np.empty((n, k), dtype=np.int32)
    scores = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, BLOCK):
        block = x[start:start + BLOCK] @ x.T
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        ids[start:start + BLOCK] = np.take_along_axis(part, order, axis=1)
        scores[start:start + BLOCK] = np.take_along_axis(vals, order, axis=1)
    return ids, scores


def timed(fn, x, k):
    start, cpu = time.perf_counter(), time.process_time()
    ids, scores = fn(x, k)
    return time.perf_counter() - start, time.process_time() - cpu, ids, scores


def main():
    path, dims, k, out_prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    x = np.ascontiguousarray(np.fromfile(path, dtype="<f4").reshape(-1, dims))
    report = {"rows": int(x.shape[0]), "dims": dims, "k": k, "threads": faiss.omp_get_max_threads(), "sample": {}}
    for name, fn in (("faiss", faiss_topk), ("numpy", numpy_topk)):
        seconds, cpu, ids, scores = timed(fn, x, k)
        ids.tofile(f"{out_prefix}.{name}.i32")
        report[f"{name}_seconds"] = seconds
        report[f"{name}_cpu_seconds"] = cpu
        report["sample"][name] = {
            "ids": ids[:SAMPLE].tolist(),
            "scores": [[round(float(s), 6) for s in row] for row in scores[:SAMPLE]],
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
