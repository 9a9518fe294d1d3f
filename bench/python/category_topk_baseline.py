"""The faiss-cpu baseline of `npm run bench -- similarity:category`.

Reads the float32 matrix twinflow searches (raw little-endian, row-major, rows x DIMS); row
r belongs to category r % CATEGORIES. For each category: an IndexFlatIP of its rows, then
every one of its rows searched for its K best within the category (itself included, as on
twinflow's side). Timing excludes reading the file; CPU seconds cover all threads. Writes
each row's K neighbours (rows of the whole matrix) as int32 rows x K to OUT.i32 and prints
one JSON line.

    python category_topk_baseline.py MATRIX.f32 DIMS K CATEGORIES OUT
"""

import json
import sys
import time

import faiss
import numpy as np


def main():
    path, dims, k, categories, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    x = np.ascontiguousarray(np.fromfile(path, dtype="<f4").reshape(-1, dims))
    rows = np.arange(x.shape[0])
    members = [rows[rows % categories == c] for c in range(categories)]
    ids = np.full((x.shape[0], k), -1, dtype=np.int32)
    start, cpu = time.perf_counter(), time.process_time()
    for m in members:
        part = np.ascontiguousarray(x[m])
        index = faiss.IndexFlatIP(dims)
        index.add(part)
        _, found = index.search(part, min(k, len(m)))
        ids[m, : found.shape[1]] = m[found]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    ids.tofile(f"{out}.i32")
    print(json.dumps({"rows": int(x.shape[0]), "categories": categories, "seconds": seconds, "cpu_seconds": cpu_seconds, "threads": faiss.omp_get_max_threads()}))


if __name__ == "__main__":
    main()
