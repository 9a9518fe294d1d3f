"""The pyarrow baseline of `npm run bench -- twin:assemble`.

Reads the same inputs as twinflow's twin/assemble (instance manifest, hard-negative items
and decisions, generated images and decisions), applies the same split (a port of
pairs.ts `splitInstances` and its mulberry32 generator), enumerates the same queries in
the same per-kind order, and writes the same files: the images folder, Twin rows and
meta JSONL, verl parquet (pyarrow, row groups of 10,000) and sharegpt JSON. The row
order is a plain Python shuffle, so files match twinflow's as sets of lines, not byte
for byte. Prints one JSON line: seconds, peak RSS and rows per split.

    python assemble_baseline.py CONFIG.json OUT_DIR
"""

import json
import os
import random
import re
import resource
import shutil
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

M32 = 0xFFFFFFFF


def imul(a, b):
    return (a * b) & M32


def mulberry32(seed):
    state = seed & M32

    def draw():
        nonlocal state
        state = (state + 0x6D2B79F5) & M32
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return draw


def split_instances(ids, eval_count, seed):
    order = sorted(ids)
    draw = mulberry32(seed)
    for i in range(len(order) - 1, 0, -1):
        j = int(draw() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return set(order[:eval_count])


def fnv1a(text):
    h = 2166136261
    for ch in text:
        h = ((h ^ ord(ch)) * 16777619) & M32
    return h


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sniff(path):
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:3] == b"\xff\xd8\xff":
        return "jpg"
    if head[:4] == b"\x89PNG":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    raise ValueError(f"unknown image format: {path}")


def load(cfg):
    """Instances in manifest order, each image once (first occurrence), approved pairs and generated images."""
    seen, instances = {}, []
    for row in read_jsonl(cfg["instances"]):
        real = []
        for img in row["images"]:
            if img["role"] != "generated" and img["sha256"] not in seen:
                seen[img["sha256"]] = img["path"]
                real.append(img["sha256"])
        instances.append({"id": row["instance_id"], "category": row["category"], "real": real, "gen": []})
    by_id = {x["id"]: x for x in instances}
    gen_ok = {d["id"] for d in read_jsonl(cfg["generatedDecisions"]) if d["choice"] == "accept"}
    for row in read_jsonl(cfg["generated"]):
        for img in row["images"]:
            if f"gen:{img['sha256']}" in gen_ok and img["sha256"] not in seen:
                seen[img["sha256"]] = img["path"]
                by_id[row["instance_id"]]["gen"].append(img["sha256"])
    hard_ok = {d["id"] for d in read_jsonl(cfg["hardDecisions"]) if d["choice"] == "accept"}
    pairs = set()
    for item in read_jsonl(cfg["hardNegatives"]):
        if item["id"] in hard_ok:
            a, b = item["metadata"]["anchor"], item["metadata"]["candidate"]
            pairs.add((a, b) if a < b else (b, a))
    return instances, by_id, sorted(pairs), seen


def enumerate_split(instances, by_id, pairs, members):
    """(kind, sha_1, sha_2, instance_1, instance_2, category) in the order of pairs.ts queriesOf."""
    chosen = [x for x in instances if x["id"] in members]
    out = []
    for x in chosen:
        r = x["real"]
        out.extend(("positive", r[i], r[j], x, x) for i in range(len(r)) for j in range(i + 1, len(r)))
    for a, b in pairs:
        if a in members and b in members:
            x, y = by_id[a], by_id[b]
            out.extend(("hard-negative", i1, i2, x, y) for i1 in x["real"] for i2 in y["real"])
    for x in chosen:
        out.extend(("generated-negative", r, g, x, x) for r in x["real"] for g in x["gen"])
    return out


def row_fields(query, templates, ext):
    kind, s1, s2, x, y = query
    a, b = s1[:16], s2[:16]
    pair_id = f"{a}-{b}" if a < b else f"{b}-{a}"
    question = templates[x["category"]][fnv1a(pair_id) % len(templates[x["category"]])]
    if fnv1a(pair_id + ":order") & 1:
        s1, s2, x, y = s2, s1, y, x
    answer = "yes" if kind == "positive" else "no"
    return question, answer, f"images/{s1}.{ext[s1]}", f"images/{s2}.{ext[s2]}", pair_id, kind, x, y


def write_split(name, queries, templates, ext, out):
    random.Random(0).shuffle(queries)
    rows = [row_fields(q, templates, ext) for q in queries]
    with open(os.path.join(out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
        for q, a, i1, i2, *_ in rows:
            f.write(json.dumps({"question": q, "answer": a, "image_1": i1, "image_2": i2}, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(os.path.join(out, f"{name}.meta.jsonl"), "w", encoding="utf-8") as f:
        for k, (q, a, i1, i2, pid, kind, x, y) in enumerate(rows):
            meta = {"index": k, "pair_id": pid, "kind": kind, "category": x["category"], "instance_1": x["id"], "instance_2": y["id"]}
            f.write(json.dumps(meta, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(os.path.join(out, f"{name}.sharegpt.json"), "w", encoding="utf-8") as f:
        records = [{"messages": [{"role": "user", "content": "<image><image>" + q}, {"role": "assistant", "content": f"<answer>{a}</answer>"}],
                    "images": [i1, i2]} for q, a, i1, i2, *_ in rows]
        json.dump(records, f, ensure_ascii=False, separators=(",", ":"))
    write_parquet(name, rows, os.path.join(out, f"{name}.parquet"))
    return len(rows)


PROMPT = pa.struct([pa.field("role", pa.string(), False), pa.field("content", pa.string(), False)])
IMAGE = pa.struct([pa.field("image", pa.string(), False)])
REWARD = pa.struct([pa.field("style", pa.string(), False), pa.field("ground_truth", pa.string(), False)])
EXTRA = pa.struct([pa.field(n, pa.int64() if n == "index" else pa.string(), False)
                   for n in ["split", "index", "pair_id", "kind", "category", "instance_1", "instance_2"]])
SCHEMA = pa.schema([("data_source", pa.string()), ("prompt", pa.list_(PROMPT)), ("images", pa.list_(IMAGE)),
                    ("ability", pa.string()), ("reward_model", REWARD), ("extra_info", EXTRA)])


def write_parquet(name, rows, path, group=10_000):
    with pq.ParquetWriter(path, SCHEMA, compression="snappy") as writer:
        for start in range(0, len(rows), group):
            chunk = rows[start:start + group]
            writer.write_table(pa.table({
                "data_source": ["twin"] * len(chunk),
                "prompt": [[{"role": "user", "content": "<image>\n<image>\n\n" + r[0]}] for r in chunk],
                "images": [[{"image": r[2]}, {"image": r[3]}] for r in chunk],
                "ability": ["vision"] * len(chunk),
                "reward_model": [{"style": "rule", "ground_truth": r[1]} for r in chunk],
                "extra_info": [{"split": name, "index": start + k, "pair_id": r[4], "kind": r[5], "category": r[6]["category"],
                                "instance_1": r[6]["id"], "instance_2": r[7]["id"]} for k, r in enumerate(chunk)],
            }, schema=SCHEMA))


def main():
    cfg = json.load(open(sys.argv[1], encoding="utf-8"))
    out = sys.argv[2]
    start = time.perf_counter()
    instances, by_id, pairs, files = load(cfg)
    eval_ids = split_instances([x["id"] for x in instances], int(cfg["evalFraction"] * len(instances) + 0.5), cfg["seed"])
    splits = {"eval": eval_ids, "train": {x["id"] for x in instances} - eval_ids}
    queries = {name: enumerate_split(instances, by_id, pairs, members) for name, members in splits.items()}
    used = {s for qs in queries.values() for q in qs for s in (q[1], q[2])}
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    ext = {}
    for sha in sorted(used):
        ext[sha] = sniff(files[sha])
        shutil.copyfile(files[sha], os.path.join(out, "images", f"{sha}.{ext[sha]}"))
    cats = {x["category"] for x in instances}
    templates = {c: [t.replace("{category}", re.sub(r"[-_]+", " ", c)) for t in cfg["templates"]] for c in cats}
    counts = {name: write_split(name, queries[name], templates, ext, out) for name in ["train", "eval"]}
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump({"counts": counts}, f)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "maxRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": counts}))


if __name__ == "__main__":
    main()
