import * as ort from 'onnxruntime-node';
import { planBlocks, type ColumnRange, type RowBlock } from '../similarity/blocks.js';
import { int64, lowWords, Searcher, type SimilarityOptions } from '../similarity/searcher.js';
import type { Matrix } from './matrix.js';

export type { ColumnRange } from '../similarity/blocks.js';
export type { SimilarityOptions } from '../similarity/searcher.js';

/**
 * Exact similarity search over unit vectors on onnxruntime's CPU GEMM. Query rows go in
 * blocks of b, so at most b x N scores exist at a time, never the N x N matrix. Two ways
 * to use it: `topk` (the k best database rows per query, TopK inside the graph, so only
 * b x K values come back to JavaScript) and `visitScoreBlocks` (each b x N block handed to
 * a callback, for reductions such as "best score per instance"; with `upper`, a self search
 * visits only the upper triangle, half the work).
 *
 * Measured at Twin scale (22,157 x 512, k = 20, 2 cores): TopK in the graph beat copying
 * each b x N block out and selecting in JavaScript (~4.0 s against ~6.8 s); blocks of 256
 * to 1,024 rows ran alike; the database as a packed constant instead of an input saved
 * nothing once its packing was counted. A self search over the upper triangle (half the
 * GEMM, the transposed half selected through per-column thresholds) was exact but only
 * ~5-10% faster here, its per-hit work being serial JavaScript, so it was left out.
 */

export interface TopkOptions extends SimilarityOptions {
  /** Neighbours per query row; a function gives each row its own k. */
  k: number | ((query: number) => number);
  /** Columns a query row may not return; `undefined` excludes nothing. */
  exclude?: (query: number) => ColumnRange | undefined;
}

/**
 * Neighbours of every query row, flat: row q's are entries `offsets[q]` to
 * `offsets[q + 1] - 1`, best first, equal scores by the lower database row. A row gets
 * fewer than k only when fewer database rows are left after its exclusion.
 */
export interface TopkResult {
  offsets: Int32Array;
  indices: Int32Array;
  scores: Float32Array;
}

export interface VisitOptions extends SimilarityOptions {
  /**
   * Self search only (`queries` is `database`): a block of rows [s, e) is scored against
   * database rows from s on, the upper triangle, half the work; the scores it leaves out
   * are the transposes of earlier blocks' scores. @default false
   */
  upper?: boolean;
  /**
   * Row positions a block may end at, ascending and ending with the row count (e.g. where
   * each instance's rows end), so that every block holds whole groups. @default any row
   */
  breaks?: ArrayLike<number>;
}

/**
 * One block of scores: query rows [start, start + rows), each against database rows
 * [columnStart, columnStart + columns) (all of them unless `upper`).
 */
export interface ScoreBlock {
  start: number;
  rows: number;
  columnStart: number;
  columns: number;
  /** rows x columns, row-major. Reused for the next block: copy what must outlive the callback. */
  scores: Float32Array;
}

/** The k most similar database rows of every query row. */
export async function topk(queries: Matrix, database: Matrix, opts: TopkOptions): Promise<TopkResult> {
  return blockTopk(queries, database, planTopk(queries.rows, database.rows, opts), opts);
}

/** How many neighbours each row gets and which columns it may not have. */
interface TopkPlan {
  /** Row q gets offsets[q + 1] - offsets[q] neighbours: its k, or fewer when fewer rows are allowed. */
  offsets: Int32Array;
  /** Row q may not return columns [excludeStart[q], excludeEnd[q]). */
  excludeStart: Int32Array;
  excludeEnd: Int32Array;
}

function planTopk(queries: number, n: number, opts: TopkOptions): TopkPlan {
  const kOf = typeof opts.k === 'function' ? opts.k : () => opts.k as number;
  const plan = { offsets: new Int32Array(queries + 1), excludeStart: new Int32Array(queries), excludeEnd: new Int32Array(queries) };
  for (let q = 0; q < queries; q++) {
    const k = kOf(q);
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`k for query row ${q} is ${k}; it must be a whole number >= 0`);
    const range = opts.exclude?.(q);
    const start = Math.max(0, Math.min(n, range?.start ?? 0));
    const end = Math.max(start, Math.min(n, range?.end ?? 0));
    [plan.excludeStart[q], plan.excludeEnd[q]] = [start, end];
    plan.offsets[q + 1] = plan.offsets[q]! + Math.min(k, n - (end - start));
  }
  return plan;
}

/** TopK inside the graph, block by block; each row's list is that block's TopK less its exclusions. */
async function blockTopk(queries: Matrix, database: Matrix, plan: TopkPlan, opts: SimilarityOptions): Promise<TopkResult> {
  const { offsets, excludeStart, excludeEnd } = plan;
  const indices = new Int32Array(offsets[queries.rows]!);
  const scores = new Float32Array(indices.length);
  const searcher = await Searcher.open(queries, database, 'topk', opts);
  try {
    await searcher.forEachBlock(planBlocks(queries.rows, searcher.blockRows), async (block) => {
      let want = 0;
      for (let q = block.start; q < block.end; q++) {
        if (offsets[q + 1]! > offsets[q]!) want = Math.max(want, offsets[q + 1]! - offsets[q]! + excludeEnd[q]! - excludeStart[q]!);
      }
      if (want === 0) return;
      const out = await searcher.run(block, { db: searcher.databaseRows(0), k: int64(want) });
      const values = out.values!.data as Float32Array;
      const found = lowWords(out.indices!);
      for (let q = block.start; q < block.end; q++) {
        let at = offsets[q]!;
        for (let j = (q - block.start) * want; at < offsets[q + 1]!; j++) {
          const c = found[2 * j]!;
          if (c >= excludeStart[q]! && c < excludeEnd[q]!) continue;
          indices[at] = c;
          scores[at++] = values[j]!;
        }
      }
    });
  } finally {
    await searcher.release();
  }
  return { offsets, indices, scores };
}

/** Hands every block of scores (query rows in order) to `visit`, awaiting it before the next. */
export async function visitScoreBlocks(
  queries: Matrix, database: Matrix, opts: VisitOptions, visit: (block: ScoreBlock) => void | Promise<void>,
): Promise<void> {
  if (opts.upper && queries !== database) throw new RangeError('upper: the triangle is only defined when the queries are the database (pass the same Matrix twice)');
  const searcher = await Searcher.open(queries, database, 'scores', opts);
  const n = database.rows;
  const blocks = planBlocks(queries.rows, searcher.blockRows, opts.breaks);
  const columnStart = (b: RowBlock) => (opts.upper ? b.start : 0);
  // One buffer for every block: onnxruntime writes into it, so no b x N copy per block.
  const buffer = new Float32Array(blocks.reduce((most, b) => Math.max(most, (b.end - b.start) * (n - columnStart(b))), 0));
  try {
    await searcher.forEachBlock(blocks, async (b) => {
      const from = columnStart(b);
      const [rows, columns] = [b.end - b.start, n - from];
      const scores = buffer.subarray(0, rows * columns);
      // onnxruntime's kernels divide by the extent: never hand it an empty database.
      if (columns > 0) await searcher.run(b, { db: searcher.databaseRows(from) }, { scores: new ort.Tensor('float32', scores, [rows, columns]) });
      await visit({ start: b.start, rows, columnStart: from, columns, scores });
    });
  } finally {
    await searcher.release();
  }
}

/** Neighbours of query row q as [database row, score] pairs (for tests and small callers). */
export function neighboursOf(result: TopkResult, q: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = result.offsets[q]!; i < result.offsets[q + 1]!; i++) out.push([result.indices[i]!, result.scores[i]!]);
  return out;
}
