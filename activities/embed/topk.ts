import * as ort from 'onnxruntime-node';
import { planBlocks, type ColumnRange, type RowBlock } from '../similarity/blocks.js';
import { int64, lowWords, Searcher, type SimilarityOptions } from '../similarity/searcher.js';
import type { Matrix } from './matrix.js';

export type { ColumnRange } from '../similarity/blocks.js';
export { SessionPool, type SimilarityOptions } from '../similarity/searcher.js';

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
 * nothing once its packing was counted. A self search scores each pair once (see
 * `selfTopk`): half the GEMM, with a second TopK along the block's columns inside the graph,
 * so JavaScript merges only k candidates per column per block. (An earlier upper-triangle
 * search that selected the transposed half in JavaScript through per-column thresholds
 * gained only 5-10%, its per-score work being serial JavaScript.)
 */

export interface TopkOptions extends SimilarityOptions {
  /** Neighbours per query row; a function gives each row its own k. */
  k: number | ((query: number) => number);
  /** Columns a query row may not return; `undefined` excludes nothing. */
  exclude?: (query: number) => ColumnRange | undefined;
  /**
   * A self search (the same Matrix as queries and database) scores each pair once: a block
   * of rows goes against the rows from its own on, and each score serves both its row's and
   * its column's list. `false` scores the whole matrix, as for two different matrices.
   * @default true
   */
  symmetric?: boolean;
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
  const plan = planTopk(queries.rows, database.rows, opts);
  // In one block the upper triangle is the whole square: nothing to save, a transposed TopK to pay.
  const blockRows = opts.blockRows ?? selfBlockRows(queries.rows);
  return queries === database && opts.symmetric !== false && queries.rows > blockRows
    ? selfTopk(queries, plan, { ...opts, blockRows })
    : blockTopk(queries, database, plan, opts);
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

/**
 * A self search over the upper triangle. Block [s, e) is scored against rows [s, n): TopK
 * along its rows gives each block row its best among [s, n), and TopK along its columns
 * gives each later row c its best among the block's rows, which are the transposes of the
 * scores c's own block leaves out. A row's true k best are among its own block's TopK and
 * the earlier blocks' column TopKs (a row in its global k best is in the k best of any
 * subset holding it), so the merged lists are exact. Equal scores go by the lower row as in
 * `blockTopk`; a score met from the column side was computed as its transpose, which may
 * differ from it in the last bit.
 */
async function selfTopk(m: Matrix, plan: TopkPlan, opts: SimilarityOptions): Promise<TopkResult> {
  const { offsets, excludeStart, excludeEnd } = plan;
  const n = m.rows;
  const lists = new NeighbourLists(offsets);
  const overlap = (q: number, from: number, to: number) => Math.max(0, Math.min(to, excludeEnd[q]!) - Math.max(from, excludeStart[q]!));
  const wanted = (first: number, last: number, from: number, to: number) => {
    let want = 0;
    for (let q = first; q < last; q++) if (lists.capacity(q) > 0) want = Math.max(want, lists.capacity(q) + overlap(q, from, to));
    return Math.min(want, to - from);
  };
  const excluded = (q: number, c: number) => c >= excludeStart[q]! && c < excludeEnd[q]!;
  const searcher = await Searcher.open(m, m, 'both', opts);
  try {
    await searcher.forEachBlock(planBlocks(n, searcher.blockRows), async ({ start, end }) => {
      const want = wanted(start, end, start, n);
      const wantColumns = wanted(end, n, start, end);
      if (want === 0 && wantColumns === 0) return;
      // TopK is never asked for 0 (its outputs would be empty); unwanted results are not read.
      const out = await searcher.run({ start, end }, { db: searcher.databaseRows(start), k: int64(Math.max(1, want)), kc: int64(Math.max(1, wantColumns)) });
      const values = out.values!.data as Float32Array;
      const found = lowWords(out.indices!);
      for (let q = start; want > 0 && q < end; q++) {
        for (let j = (q - start) * want, last = j + want; j < last; j++) {
          const c = start + found[2 * j]!;
          // Best first: once one falls short, the rest of the row does too.
          if (!excluded(q, c) && !lists.offer(q, c, values[j]!)) break;
        }
      }
      const columnValues = out.columnValues!.data as Float32Array;
      const rowsFound = lowWords(out.columnIndices!);
      for (let c = end; wantColumns > 0 && c < n; c++) {
        for (let j = (c - start) * wantColumns, last = j + wantColumns; j < last; j++) {
          const q = start + rowsFound[2 * j]!;
          if (!excluded(c, q) && !lists.offer(c, q, columnValues[j]!)) break;
        }
      }
    });
  } finally {
    await searcher.release();
  }
  return { offsets, indices: lists.indices, scores: lists.scores };
}

/**
 * Rows per block of a self search: a block's scores and their transposed copy near 256 MiB,
 * between 256 and 2,048 rows. Larger blocks mean fewer column lists to merge into (one per
 * column per block) but a larger diagonal scored twice; at Twin scale (22,157 rows) blocks
 * of 1,024 to 1,536 rows ran fastest, 512 and 2,048 about 10% slower.
 */
function selfBlockRows(n: number): number {
  return Math.min(2048, Math.max(256, Math.floor(SELF_BLOCK_BYTES / 8 / Math.max(1, n))));
}
const SELF_BLOCK_BYTES = 256 * 1024 * 1024;

/**
 * Every row's best-so-far list, kept in place in the result arrays: row q's list is entries
 * offsets[q] to offsets[q] + count - 1, best first, equal scores by the lower row.
 */
class NeighbourLists {
  readonly indices: Int32Array;
  readonly scores: Float32Array;
  private readonly count: Int32Array;

  constructor(private readonly offsets: Int32Array) {
    this.indices = new Int32Array(offsets[offsets.length - 1]!);
    this.scores = new Float32Array(this.indices.length);
    this.count = new Int32Array(offsets.length - 1);
  }

  capacity(q: number): number {
    return this.offsets[q + 1]! - this.offsets[q]!;
  }

  /** Puts column c with score v into row q's list if it ranks there; false when it does not. */
  offer(q: number, c: number, v: number): boolean {
    const { indices, scores } = this;
    const base = this.offsets[q]!;
    const capacity = this.offsets[q + 1]! - base;
    let length = this.count[q]!;
    if (length === capacity) {
      const last = base + capacity - 1;
      if (capacity === 0 || v < scores[last]! || (v === scores[last]! && c > indices[last]!)) return false;
      length--;
    }
    let at = base + length;
    for (; at > base && (scores[at - 1]! < v || (scores[at - 1]! === v && indices[at - 1]! > c)); at--) {
      scores[at] = scores[at - 1]!;
      indices[at] = indices[at - 1]!;
    }
    scores[at] = v;
    indices[at] = c;
    this.count[q] = length + 1;
    return true;
  }
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
