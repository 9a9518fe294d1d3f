/**
 * Benchmark similarity:category: the search twin/shortlist runs with sameCategory, at Twin
 * scale. The same 22,157 x 512 unit vectors as twin:topk fall into 36 categories (row r in
 * category r % 36, the paper's count), and every row gets its k = 20 best within its
 * category (itself included). twinflow searches each category on its own rows (topk's self
 * search, one onnxruntime session per graph for all 36); the baseline
 * (bench/python/category_topk_baseline.py) builds a faiss-cpu IndexFlatIP per category and
 * searches it. Both sides gather each category's rows inside the timing; runs alternate,
 * medians are reported, and every row's neighbours are compared with faiss's.
 *
 *   npm run bench -- similarity:category            (BENCH_REPS=n for more alternating runs)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pickRows, readMatrix, toLittleEndian, type Matrix } from '../activities/embed/matrix.js';
import { SessionPool, topk } from '../activities/embed/topk.js';
import { unitVectors } from './twin-topk.js';

const ROWS = 22_157;
const DIMS = 512;
const K = 20;
const CATEGORIES = 36;
const REPS = Number(process.env.BENCH_REPS ?? 5);

/** Every row's K best within its category, as rows of the whole matrix (-1 where a category has fewer). */
async function twinflowRun(m: Matrix): Promise<{ seconds: number; cpu: number; ids: Int32Array }> {
  const [start, cpu] = [performance.now(), process.cpuUsage()];
  const ids = new Int32Array(m.rows * K).fill(-1);
  const sessions = new SessionPool();
  try {
    for (let c = 0; c < CATEGORIES; c++) {
      const members = Int32Array.from({ length: Math.ceil((m.rows - c) / CATEGORIES) }, (_, i) => c + i * CATEGORIES);
      const part = pickRows(m, members);
      const found = await topk(part, part, { k: Math.min(K, members.length), sessions });
      members.forEach((row, i) => {
        for (let j = found.offsets[i]!, at = row * K; j < found.offsets[i + 1]!; j++, at++) ids[at] = members[found.indices[j]!]!;
      });
    }
  } finally {
    await sessions.release();
  }
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6, ids };
}

function faissRun(file: string, out: string): { seconds: number; cpu_seconds: number; threads: number } {
  const python = path.resolve('.venv/bin/python');
  const text = execFileSync(python, ['bench/python/category_topk_baseline.py', file, String(DIMS), String(K), String(CATEGORIES), out], { encoding: 'utf8' });
  return JSON.parse(text.trim().split('\n').at(-1)!) as { seconds: number; cpu_seconds: number; threads: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (s: number) => `${(s * 1000).toFixed(0)} ms`;

export async function categoryBench(): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-category-bench-'));
  try {
    const file = path.join(dir, 'vectors.f32');
    const data = unitVectors(ROWS, DIMS, 2024);
    await fs.writeFile(file, os.endianness() === 'LE' ? new Uint8Array(data.buffer) : toLittleEndian(data));
    const m = await readMatrix(file, DIMS);
    const ours: number[] = [];
    const oursCpu: number[] = [];
    const theirs: number[] = [];
    const theirsCpu: number[] = [];
    let last: Int32Array | undefined;
    let threads = 0;
    for (let rep = 0; rep < REPS; rep++) {
      const run = await twinflowRun(m);
      [ours[rep], oursCpu[rep], last] = [run.seconds, run.cpu, run.ids];
      const baseline = faissRun(file, path.join(dir, 'faiss'));
      [theirs[rep], theirsCpu[rep], threads] = [baseline.seconds, baseline.cpu_seconds, baseline.threads];
    }
    const bytes = await fs.readFile(path.join(dir, 'faiss.i32'));
    const faissIds = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let hits = 0;
    for (let r = 0; r < ROWS; r++) {
      const truth = new Set(faissIds.subarray(r * K, (r + 1) * K));
      for (let j = 0; j < K; j++) if (truth.has(last![r * K + j]!)) hits++;
    }
    const [t, f] = [median(ours), median(theirs)];
    return [
      `${ROWS.toLocaleString('en')} x ${DIMS} unit vectors in ${CATEGORIES} categories, k = ${K} within each category, ` +
        `${os.availableParallelism()} cores (faiss threads: ${threads}), median of ${REPS} alternating runs`,
      `twinflow, each category on its own rows: ${fmt(t)}   runs: ${ours.map(fmt).join(', ')}`,
      `faiss-cpu IndexFlatIP per category:      ${fmt(f)}   runs: ${theirs.map(fmt).join(', ')}`,
      `twinflow / faiss = ${(t / f).toFixed(2)}x (target <= 0.6x); CPU seconds: twinflow ${median(oursCpu).toFixed(2)}, faiss ${median(theirsCpu).toFixed(2)}`,
      `recall@${K} vs faiss: ${(hits / (ROWS * K)).toFixed(5)}`,
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
