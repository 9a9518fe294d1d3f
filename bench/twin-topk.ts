/**
 * Benchmark twin (a): the top-k similarity search that twin/dedupe and twin/shortlist
 * stand on, at Twin scale (22,157 images, 512-dim unit vectors, k = 20 for every row
 * against every row, itself included on every side), twinflow's topk (onnxruntime Gemm +
 * TopK, blocked; as a self search scoring each pair once, and over the whole matrix)
 * against faiss-cpu IndexFlatIP and numpy (matmul per block +
 * argpartition), both run by bench/python/topk_baseline.py on the same file. Each side
 * times its search only (not reading the file); runs alternate, medians are reported, and
 * every row's neighbours are compared with faiss's (recall@20).
 *
 *   npm run bench -- twin:topk                     (BENCH_REPS=n for more alternating runs)
 *   tsx bench/twin-topk.ts                         (the same, without the other parts)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readMatrix, toLittleEndian, type Matrix } from '../activities/embed/matrix.js';
import { topk, visitScoreBlocks } from '../activities/embed/topk.js';
import { seededRandom } from '../activities/twin/pairs.js';

const ROWS = 22_157;
const DIMS = 512;
const K = 20;
const REPS = Number(process.env.BENCH_REPS ?? 3);

interface PythonReport {
  rows: number;
  threads: number;
  faiss_seconds: number;
  numpy_seconds: number;
  faiss_cpu_seconds: number;
  numpy_cpu_seconds: number;
  sample: Record<string, { ids: number[][]; scores: number[][] }>;
}

/** Seeded Gaussian rows scaled to unit length: directions uniform on the sphere. */
export function unitVectors(rows: number, dims: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const data = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      const v = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      data[r * dims + d] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let d = 0; d < dims; d++) data[r * dims + d] = data[r * dims + d]! * scale;
  }
  return data;
}

async function twinflowRun(m: Matrix, symmetric: boolean): Promise<{ seconds: number; cpu: number; ids: Int32Array }> {
  const [start, cpu] = [performance.now(), process.cpuUsage()];
  const result = await topk(m, m, { k: K, symmetric });
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6, ids: result.indices };
}

function pythonRun(file: string, prefix: string): PythonReport {
  const python = path.resolve('.venv/bin/python');
  const out = execFileSync(python, ['bench/python/topk_baseline.py', file, String(DIMS), String(K), prefix], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as PythonReport;
}

/** Mean over rows of |ours ∩ theirs| / k. */
function recall(ours: Int32Array, theirs: Int32Array, rows: number, k: number): number {
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    const set = new Set(theirs.subarray(r * k, (r + 1) * k));
    for (let i = 0; i < k; i++) if (set.has(ours[r * k + i]!)) hits++;
  }
  return hits / (rows * k);
}

async function readIds(file: string): Promise<Int32Array> {
  const bytes = await fs.readFile(file);
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** One pass of the block visitor over the upper triangle with a per-row max in JS (the shape of twin/shortlist's scoring). */
async function visitorSeconds(m: Matrix): Promise<number> {
  const start = performance.now();
  let sink = 0;
  await visitScoreBlocks(m, m, { upper: true }, ({ scores, rows, columns }) => {
    for (let i = 0; i < rows; i++) {
      let best = -Infinity;
      for (let j = i * columns; j < (i + 1) * columns; j++) if (scores[j]! > best) best = scores[j]!;
      sink += best;
    }
  });
  if (!(sink > 0)) throw new Error('visitor pass saw no scores');
  return (performance.now() - start) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (s: number) => `${s.toFixed(2)} s`;

export async function topkBench(): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-topk-bench-'));
  try {
    const file = path.join(dir, 'vectors.f32');
    const data = unitVectors(ROWS, DIMS, 2024);
    await fs.writeFile(file, os.endianness() === 'LE' ? new Uint8Array(data.buffer) : toLittleEndian(data));
    const m = await readMatrix(file, DIMS);
    const [ours, whole, faiss, numpy] = [[] as number[], [] as number[], [] as number[], [] as number[]];
    const [oursCpu, wholeCpu, faissCpu, numpyCpu] = [[] as number[], [] as number[], [] as number[], [] as number[]];
    let last: { ids: Int32Array } | undefined;
    let lastWhole: { ids: Int32Array } | undefined;
    let threads = 0;
    for (let rep = 0; rep < REPS; rep++) {
      const run = await twinflowRun(m, true);
      ours.push(run.seconds);
      oursCpu.push(run.cpu);
      last = run;
      const wholeRun = await twinflowRun(m, false);
      whole.push(wholeRun.seconds);
      wholeCpu.push(wholeRun.cpu);
      lastWhole = wholeRun;
      const py = pythonRun(file, path.join(dir, 'baseline'));
      faiss.push(py.faiss_seconds);
      numpy.push(py.numpy_seconds);
      faissCpu.push(py.faiss_cpu_seconds);
      numpyCpu.push(py.numpy_cpu_seconds);
      threads = py.threads;
    }
    const faissIds = await readIds(path.join(dir, 'baseline.faiss.i32'));
    const numpyIds = await readIds(path.join(dir, 'baseline.numpy.i32'));
    const visitor = await visitorSeconds(m);
    const [t, w, f, n] = [median(ours), median(whole), median(faiss), median(numpy)];
    const [tc, wc, fc, nc] = [median(oursCpu), median(wholeCpu), median(faissCpu), median(numpyCpu)];
    return [
      `${ROWS.toLocaleString('en')} x ${DIMS} unit vectors, k = ${K} for every row against every row (self included), ` +
        `${os.availableParallelism()} cores (faiss/OpenMP threads: ${threads}), median of ${REPS} alternating runs`,
      `twinflow topk, self search (each pair once): ${fmt(t)}   runs: ${ours.map(fmt).join(', ')}`,
      `twinflow topk, whole matrix:             ${fmt(w)}   runs: ${whole.map(fmt).join(', ')}`,
      `faiss-cpu IndexFlatIP:                   ${fmt(f)}   runs: ${faiss.map(fmt).join(', ')}`,
      `numpy matmul + argpartition:             ${fmt(n)}   runs: ${numpy.map(fmt).join(', ')}`,
      `self search / faiss = ${(t / f).toFixed(2)}x (target <= 0.6x); whole matrix / faiss = ${(w / f).toFixed(2)}x; self search / numpy = ${(t / n).toFixed(2)}x`,
      `CPU seconds, all threads (median): self search ${tc.toFixed(2)}, whole matrix ${wc.toFixed(2)}, faiss ${fc.toFixed(2)}, numpy ${nc.toFixed(2)} ` +
        `(self search / faiss = ${(tc / fc).toFixed(2)}x; steadier than wall time on a shared machine)`,
      `recall@${K} vs faiss: self search ${recall(last!.ids, faissIds, ROWS, K).toFixed(5)}, whole matrix ${recall(lastWhole!.ids, faissIds, ROWS, K).toFixed(5)}, ` +
        `numpy ${recall(numpyIds, faissIds, ROWS, K).toFixed(5)}`,
      `block visitor over the upper triangle with a per-row max in JS (twin/shortlist's scoring path), one run: ${fmt(visitor)}`,
    ];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log((await topkBench()).join('\n'));
}
