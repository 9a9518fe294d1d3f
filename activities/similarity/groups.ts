import type { Matrix } from '../embed/matrix.js';
import type { Scorer } from './scorer.js';

/**
 * Walks the scores of every group's rows against all rows, a block of whole groups at a
 * time (a group = one instance's images), so a per-group reduction sees all its rows at
 * once. The GEMM of the next block runs on onnxruntime's threads while this thread
 * reduces the current one.
 */
export async function forEachGroupScores(
  scorer: Scorer,
  matrix: Matrix,
  groups: readonly number[][],
  opts: { blockRows?: number; signal?: AbortSignal },
  visit: (group: number, rowScores: (i: number) => Float32Array) => void,
): Promise<void> {
  const n = matrix.rows;
  const blockRows = Math.max(1, opts.blockRows ?? Math.max(64, Math.floor(8_000_000 / Math.max(n, 1))));
  const blocks = planBlocks(groups, blockRows);
  const run = (b: number[]) => {
    const rows = b.flatMap((g) => groups[g]!);
    const q = new Float32Array(rows.length * matrix.dims);
    rows.forEach((r, i) => q.set(matrix.data.subarray(r * matrix.dims, (r + 1) * matrix.dims), i * matrix.dims));
    return scorer.scores(q, rows.length);
  };
  let next = blocks.length ? run(blocks[0]!) : undefined;
  for (let k = 0; k < blocks.length; k++) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('cancelled');
    const scores = await next!;
    next = k + 1 < blocks.length ? run(blocks[k + 1]!) : undefined;
    let offset = 0;
    for (const g of blocks[k]!) {
      const base = offset;
      visit(g, (i) => scores.subarray((base + i) * n, (base + i + 1) * n));
      offset += groups[g]!.length;
    }
  }
}

/** Consecutive groups until a block holds about `blockRows` rows (a big group is one block). */
function planBlocks(groups: readonly number[][], blockRows: number): number[][] {
  const blocks: number[][] = [];
  let current: number[] = [];
  let rows = 0;
  groups.forEach((g, i) => {
    if (g.length === 0) return;
    if (rows > 0 && rows + g.length > blockRows) {
      blocks.push(current);
      current = [];
      rows = 0;
    }
    current.push(i);
    rows += g.length;
  });
  if (current.length) blocks.push(current);
  return blocks;
}
