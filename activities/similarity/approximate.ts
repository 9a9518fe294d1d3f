import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CancelledFailure } from '@temporalio/common';
import { pickRows, type Matrix } from '../embed/matrix.js';
import { topk } from '../embed/topk.js';
import { seededRandom } from '../twin/pairs.js';
import type { ColumnRange } from './blocks.js';

// usearch's ES module entry never finds its native build (its directory walk recurses
// without end under Node 20); its CommonJS entry does.
const usearch = createRequire(import.meta.url)('usearch') as typeof import('usearch');

/** How vectors are stored in the graph; neighbours found are scored again in float32. */
export type Precision = 'f32' | 'f16' | 'i8';

export interface HnswOptions {
  precision: Precision;
  /** Edges per node (HNSW's M). */
  connectivity: number;
  /** Candidates kept while inserting (efConstruction). */
  expansionAdd: number;
  /** Candidates kept while searching (ef); raised to the number asked for when that is larger. */
  expansionSearch: number;
  /**
   * Insert with one thread, so the same rows give the same graph and the same neighbours
   * run after run; several threads insert in whatever order they race to. Searching is
   * read-only and uses every thread either way.
   */
  reproducible: boolean;
  /** @default os.availableParallelism() */
  threads?: number;
  signal?: AbortSignal;
  /** Where a graph built on one thread is saved while it is searched. @default os.tmpdir() */
  scratchDir?: string;
  /** Rows inserted, then rows searched, out of twice the row count. */
  onProgress?: (done: number, total: number) => void;
}

export type HnswTopkOptions = HnswOptions & {
  /** Neighbours kept per row, after its exclusion. */
  k: (q: number) => number;
  exclude?: (q: number) => ColumnRange | undefined;
  /** Neighbours asked of the graph per row. @default k plus the width of its exclusion */
  count?: (q: number) => number;
};

/** Neighbour lists as `topk` returns them: row q's are entries offsets[q] to offsets[q + 1] - 1, best first. */
export interface NeighbourLists {
  offsets: Int32Array;
  indices: Int32Array;
  scores: Float32Array;
}

const SCALAR = { f32: usearch.ScalarKind.F32, f16: usearch.ScalarKind.F16, i8: usearch.ScalarKind.I8 } as const;
/** Rows per native call: each blocks the event loop, so heartbeats and cancellation land between chunks. */
const CHUNK_ROWS = 4096;

/**
 * Approximate self search through an HNSW graph (usearch): the rows of `m` are inserted
 * under their row numbers, then every row asks for `count(q)` neighbours (itself among
 * them, like `topk`). The neighbours found are scored again exactly in float32, and each
 * list is cut to `k(q)` after its excluded rows are dropped, best first, equal scores by the
 * lower row. A row may get fewer than k when the graph found fewer.
 */
export async function hnswTopk(m: Matrix, opts: HnswTopkOptions): Promise<NeighbourLists> {
  const threads = opts.threads ?? os.availableParallelism();
  const config = {
    dimensions: m.dims, metric: usearch.MetricKind.IP, quantization: SCALAR[opts.precision],
    connectivity: opts.connectivity, expansion_add: opts.expansionAdd, expansion_search: opts.expansionSearch, multi: false,
  };
  const { rows, dims } = m;
  let index = new usearch.Index(config);
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const end = Math.min(rows, start + CHUNK_ROWS);
    index.add(rowKeys(start, end), m.data.subarray(start * dims, end * dims), opts.reproducible ? 1 : threads);
    await between(opts, end, rows);
  }
  // usearch keeps search contexts for as many threads as the adds used; a graph built on
  // one thread is saved and mapped back in, which sizes them for every core.
  const scratch = opts.reproducible && threads > 1 ? await fs.mkdtemp(path.join(opts.scratchDir ?? os.tmpdir(), 'twinflow-hnsw-')) : undefined;
  try {
    if (scratch) {
      const file = path.join(scratch, 'graph.usearch');
      index.save(file);
      index = new usearch.Index(config);
      index.view(file);
    }
    return await searchAll(index, m, opts, threads);
  } finally {
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function searchAll(index: InstanceType<typeof usearch.Index>, m: Matrix, opts: HnswTopkOptions, threads: number): Promise<NeighbourLists> {
  const { rows, dims } = m;
  const width = (q: number) => {
    const range = opts.exclude?.(q);
    return range ? Math.max(0, Math.min(rows, range.end) - Math.max(0, range.start)) : 0;
  };
  const count = opts.count ?? ((q: number) => opts.k(q) + width(q));
  const lists: Array<{ indices: Int32Array; scores: Float32Array }> = [];
  let total = 0;
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const end = Math.min(rows, start + CHUNK_ROWS);
    let ask = 0;
    for (let q = start; q < end; q++) ask = Math.max(ask, Math.min(rows, count(q)));
    if (ask === 0) {
      for (let q = start; q < end; q++) lists.push({ indices: new Int32Array(0), scores: new Float32Array(0) });
    } else {
      const found = index.search(m.data.subarray(start * dims, end * dims), ask, threads);
      // One query row comes back as Matches (its keys only), several as BatchMatches.
      const countOf = (i: number) => (found instanceof usearch.BatchMatches ? Number(found.counts[i]!) : found.keys.length);
      for (let q = start; q < end; q++) {
        const at = (q - start) * ask;
        const list = rescored(m, q, found.keys.subarray(at, at + countOf(q - start)), opts.exclude?.(q), opts.k(q));
        total += list.indices.length;
        lists.push(list);
      }
    }
    await between(opts, rows + end, rows);
  }
  const out: NeighbourLists = { offsets: new Int32Array(rows + 1), indices: new Int32Array(total), scores: new Float32Array(total) };
  lists.forEach((list, q) => {
    out.indices.set(list.indices, out.offsets[q]!);
    out.scores.set(list.scores, out.offsets[q]!);
    out.offsets[q + 1] = out.offsets[q]! + list.indices.length;
  });
  return out;
}

function rowKeys(start: number, end: number): BigUint64Array {
  const keys = new BigUint64Array(end - start);
  for (let i = 0; i < keys.length; i++) keys[i] = BigInt(start + i);
  return keys;
}

async function between(opts: Pick<HnswOptions, 'signal' | 'onProgress'>, done: number, rows: number): Promise<void> {
  opts.onProgress?.(done, 2 * rows);
  await nextTurn();
  if (opts.signal?.aborted) throw new CancelledFailure('similarity search cancelled');
}

/** Row q's candidates less its excluded rows, scored exactly, best first (ties by the lower row), at most k. */
function rescored(m: Matrix, q: number, keys: BigUint64Array, exclude: ColumnRange | undefined, k: number): { indices: Int32Array; scores: Float32Array } {
  const { data, dims } = m;
  const found: Array<[number, number]> = [];
  for (const key of keys) {
    const c = Number(key);
    if (exclude && c >= exclude.start && c < exclude.end) continue;
    let s = 0;
    for (let d = 0, a = q * dims, b = c * dims; d < dims; d++) s += data[a + d]! * data[b + d]!;
    found.push([c, Math.fround(s)]);
  }
  found.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
  const kept = found.slice(0, k);
  return { indices: Int32Array.from(kept, ([c]) => c), scores: Float32Array.from(kept, ([, s]) => s) };
}

/**
 * `sample` of the rows 0..rows-1 (all of them when there are fewer), in ascending order,
 * drawn by a partial Fisher-Yates shuffle from `random`.
 */
export function sampleRows(rows: number, sample: number, random: () => number): Int32Array {
  const all = Int32Array.from({ length: rows }, (_, i) => i);
  const n = Math.min(rows, sample);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (rows - i));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.subarray(0, n).sort();
}

/** Mean over the sampled rows of |found ∩ exact| / |exact| (1 when there is nothing to find). */
export function recallOf(found: (i: number) => ArrayLike<number>, exact: (i: number) => ArrayLike<number>, n: number): number {
  let hits = 0;
  let wanted = 0;
  for (let i = 0; i < n; i++) {
    const truth = new Set(Array.from(exact(i)));
    wanted += truth.size;
    for (const c of Array.from(found(i))) if (truth.has(c)) hits++;
  }
  return wanted === 0 ? 1 : hits / wanted;
}

/**
 * The recall of approximate self-search lists against exact search (`topk`) on `sample`
 * rows drawn with `seed`: each sampled row's exact k best (after its exclusion) against the
 * rows the approximate list holds.
 */
export async function sampledRecall(
  m: Matrix, lists: NeighbourLists, opts: { sample: number; seed: number; k: (q: number) => number; exclude?: (q: number) => ColumnRange | undefined; threads?: number; signal?: AbortSignal },
): Promise<{ recall: number; sampled: number }> {
  const rows = sampleRows(m.rows, opts.sample, seededRandom(opts.seed));
  const exact = await topk(pickRows(m, rows), m, {
    k: (i) => opts.k(rows[i]!), exclude: opts.exclude && ((i) => opts.exclude!(rows[i]!)), threads: opts.threads, signal: opts.signal,
  });
  const listOf = (l: NeighbourLists, q: number) => l.indices.subarray(l.offsets[q]!, l.offsets[q + 1]!);
  return { recall: recallOf((i) => listOf(lists, rows[i]!), (i) => listOf(exact, i), rows.length), sampled: rows.length };
}
