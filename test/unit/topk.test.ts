/*
 * Scenarios (activities/embed/topk.ts against a brute-force loop in this file):
 * - Vectors whose dot products are exact in float32 (multiples of 1/4): topk returns exactly
 *   the brute-force neighbours and scores, with repeated rows tied and the lower row first,
 *   for block sizes that do and do not divide the row count.
 * - Seeded random unit vectors: every returned score matches its brute-force cosine and no
 *   left-out row beats the k-th returned one.
 * - Exclusions: a row never returns itself or its group's rows; k larger than what is left
 *   returns what is left; k may differ per row.
 * - A self search (one Matrix twice) scores each pair once and returns exactly the brute-force
 *   lists, ties from both sides of the triangle included, for any block size, exclusions that
 *   straddle blocks and k per row; on random vectors it agrees with the whole-matrix search.
 * - visitScoreBlocks hands over every query row once, in order, with the right scores; in
 *   upper mode each block starts at its own first row; breaks keep groups in one block.
 * - An empty database gives empty neighbour lists.
 * - Progress is reported per block; an aborted signal stops the search; mismatched dims fail.
 */
import { CancelledFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { Matrix } from '../../activities/embed/matrix.js';
import { neighboursOf, topk, visitScoreBlocks, type ColumnRange, type TopkResult } from '../../activities/embed/topk.js';
import { seededRandom } from '../../activities/twin/pairs.js';

/** Rows with entries in {-2..2}/4: every dot product is a multiple of 1/16, exact in float32. */
function dyadic(rows: number, dims: number, seed: number): Matrix {
  const random = seededRandom(seed);
  const data = new Float32Array(rows * dims);
  for (let i = 0; i < data.length; i++) data[i] = (Math.floor(random() * 5) - 2) / 4;
  return { data, rows, dims };
}

function unitRows(rows: number, dims: number, seed: number): Matrix {
  const random = seededRandom(seed);
  const data = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += (data[r * dims + d] = random() * 2 - 1) ** 2;
    for (let d = 0; d < dims; d++) data[r * dims + d] = data[r * dims + d]! / Math.sqrt(norm);
  }
  return { data, rows, dims };
}

const dotRows = (a: Matrix, i: number, b: Matrix, j: number) => {
  let s = 0;
  for (let d = 0; d < a.dims; d++) s += a.data[i * a.dims + d]! * b.data[j * b.dims + d]!;
  return Math.fround(s);
};

/** All database rows of query q by score (desc), then row (asc), without excluded ones. */
function bruteForce(queries: Matrix, db: Matrix, q: number, exclude?: ColumnRange): Array<[number, number]> {
  const all: Array<[number, number]> = [];
  for (let j = 0; j < db.rows; j++) if (!exclude || j < exclude.start || j >= exclude.end) all.push([j, dotRows(queries, q, db, j)]);
  return all.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
}

const rowsOf = (result: TopkResult, n: number) => Array.from({ length: n }, (_, q) => neighboursOf(result, q));

describe('topk', () => {
  it('returns exactly the brute-force neighbours, ties by the lower row, whatever the block size', async () => {
    const db = dyadic(53, 8, 1);
    db.data.copyWithin(10 * 8, 3 * 8, 4 * 8); // row 10 repeats row 3: every query ties them
    db.data.copyWithin(40 * 8, 3 * 8, 4 * 8);
    const queries = dyadic(23, 8, 2);
    const expected = Array.from({ length: queries.rows }, (_, q) => bruteForce(queries, db, q).slice(0, 6));
    for (const blockRows of [1, 5, 23, 64]) {
      expect(rowsOf(await topk(queries, db, { k: 6, blockRows, threads: 2 }), queries.rows)).toEqual(expected);
    }
    // Cut every list between the tied rows 10 and 40: 10 must get in, 40 must not.
    const cut = (q: number) => bruteForce(queries, db, q).findIndex(([j]) => j === 10) + 1;
    const tied = rowsOf(await topk(queries, db, { k: cut, blockRows: 5 }), queries.rows);
    for (let q = 0; q < queries.rows; q++) {
      expect(tied[q]).toEqual(bruteForce(queries, db, q).slice(0, cut(q)));
      expect(tied[q]!.at(-1)![0]).toBe(10);
      expect(tied[q]!.map(([j]) => j)).toContain(3);
      expect(tied[q]!.map(([j]) => j)).not.toContain(40);
    }
  });

  it('matches brute-force cosines on random unit vectors and leaves out nothing better', async () => {
    const db = unitRows(301, 48, 7);
    const queries = unitRows(40, 48, 8);
    const result = await topk(queries, db, { k: 10, blockRows: 16 });
    for (let q = 0; q < queries.rows; q++) {
      const got = neighboursOf(result, q);
      const truth = bruteForce(queries, db, q);
      expect(got).toHaveLength(10);
      for (const [j, s] of got) expect(s).toBeCloseTo(dotRows(queries, q, db, j), 5);
      for (let i = 1; i < got.length; i++) expect(got[i - 1]![1]).toBeGreaterThanOrEqual(got[i]![1]);
      const chosen = new Set(got.map(([j]) => j));
      const bestLeftOut = truth.find(([j]) => !chosen.has(j))![1];
      expect(bestLeftOut).toBeLessThanOrEqual(got[9]![1] + 1e-6);
    }
  });

  it('never returns excluded rows, and returns only what is left when k is too large', async () => {
    const db = dyadic(30, 8, 3);
    const group = (q: number): ColumnRange => ({ start: q - (q % 6), end: q - (q % 6) + 6 });
    const result = await topk(db, db, { k: 4, blockRows: 7, exclude: group });
    for (let q = 0; q < db.rows; q++) expect(neighboursOf(result, q)).toEqual(bruteForce(db, db, q, group(q)).slice(0, 4));
    const self = await topk(db, db, { k: 100, exclude: (q) => ({ start: q, end: q + 1 }) });
    for (let q = 0; q < db.rows; q++) {
      expect(neighboursOf(self, q)).toHaveLength(29);
      expect(neighboursOf(self, q).some(([j]) => j === q)).toBe(false);
    }
  });

  it('scores each pair once in a self search and still returns exactly the brute-force lists', async () => {
    const m = dyadic(61, 8, 5);
    m.data.copyWithin(50 * 8, 2 * 8, 3 * 8); // row 50 repeats row 2: ties met from both sides of the triangle
    m.data.copyWithin(9 * 8, 2 * 8, 3 * 8);
    // Ranges that straddle blocks and need not hold the row itself; k per row, zero and "more than is left" included.
    const exclude = (q: number): ColumnRange | undefined => (q % 5 === 0 ? undefined : { start: Math.max(0, q - 7), end: q + (q % 3) });
    const k = (q: number) => (q % 11 === 0 ? 0 : q === 7 ? 100 : 1 + (q % 9));
    const expected = Array.from({ length: m.rows }, (_, q) => bruteForce(m, m, q, exclude(q)).slice(0, k(q)));
    for (const blockRows of [1, 4, 7, 16, 61, 100]) {
      expect(rowsOf(await topk(m, m, { k, exclude, blockRows, threads: 2 }), m.rows)).toEqual(expected);
    }
    expect(rowsOf(await topk(m, m, { k, exclude, blockRows: 7, symmetric: false }), m.rows)).toEqual(expected);
  });

  it('finds the same neighbours either way on random unit vectors in a self search', async () => {
    const m = unitRows(257, 32, 9);
    const both = await topk(m, m, { k: 12, blockRows: 40 });
    const whole = await topk(m, m, { k: 12, blockRows: 40, symmetric: false });
    expect(Array.from(both.indices)).toEqual(Array.from(whole.indices));
    both.scores.forEach((s, i) => expect(s).toBeCloseTo(whole.scores[i]!, 6));
  });

  it('gives each row its own k, zero included', async () => {
    const db = dyadic(25, 8, 4);
    const result = await topk(db, db, { k: (q) => q % 4, blockRows: 6 });
    for (let q = 0; q < db.rows; q++) expect(neighboursOf(result, q)).toEqual(bruteForce(db, db, q).slice(0, q % 4));
    await expect(topk(db, db, { k: -1 })).rejects.toThrow(/whole number >= 0/);
  });
});

describe('visitScoreBlocks', () => {
  it('hands over every query row once, in order, with its scores against every database row', async () => {
    const db = dyadic(41, 8, 6);
    const queries = dyadic(29, 8, 9);
    const seen: number[] = [];
    const progress: number[] = [];
    await visitScoreBlocks(queries, db, { blockRows: 8, onProgress: (done) => progress.push(done) }, (block) => {
      expect([block.columnStart, block.columns]).toEqual([0, 41]);
      expect(block.scores.length).toBeGreaterThanOrEqual(block.rows * 41);
      for (let i = 0; i < block.rows; i++) {
        const q = block.start + i;
        seen.push(q);
        for (let j = 0; j < db.rows; j++) expect(block.scores[i * 41 + j]).toBe(dotRows(queries, q, db, j));
      }
    });
    expect(seen).toEqual(Array.from({ length: 29 }, (_, q) => q));
    expect(progress).toEqual([8, 16, 24, 29]);
  });

  it('scores only the upper triangle in upper mode, and ends blocks only at breaks', async () => {
    const db = dyadic(37, 8, 11);
    const breaks = [3, 4, 15, 20, 21, 22, 30, 37]; // a group of 11 rows is longer than a block
    const blocks: Array<[number, number, number]> = [];
    await visitScoreBlocks(db, db, { blockRows: 6, upper: true, breaks }, (block) => {
      blocks.push([block.start, block.start + block.rows, block.columnStart]);
      expect(block.columns).toBe(37 - block.start);
      for (let i = 0; i < block.rows; i++) {
        for (let j = 0; j < block.columns; j++) {
          expect(block.scores[i * block.columns + j]).toBe(dotRows(db, block.start + i, db, block.start + j));
        }
      }
    });
    expect(blocks).toEqual([[0, 4, 0], [4, 15, 4], [15, 21, 15], [21, 22, 21], [22, 30, 22], [30, 37, 30]]);
    await expect(visitScoreBlocks(db, dyadic(37, 8, 11), { upper: true }, () => undefined)).rejects.toThrow(/same Matrix/);
    await expect(visitScoreBlocks(db, db, { breaks: [5, 3, 37] }, () => undefined)).rejects.toThrow(/ascending/);
  });

  it('gives empty neighbour lists and empty blocks against an empty database', async () => {
    const empty: Matrix = { data: new Float32Array(0), rows: 0, dims: 8 };
    const result = await topk(dyadic(3, 8, 1), empty, { k: 5 });
    expect(Array.from(result.offsets)).toEqual([0, 0, 0, 0]);
    const columns: number[] = [];
    await visitScoreBlocks(dyadic(3, 8, 1), empty, {}, (block) => { columns.push(block.columns); });
    expect(columns).toEqual([0]);
  });

  it('stops with a CancelledFailure when the signal is aborted, and refuses mismatched dims', async () => {
    const db = dyadic(20, 8, 10);
    const abort = new AbortController();
    let blocks = 0;
    const run = visitScoreBlocks(db, db, { blockRows: 4, signal: abort.signal }, () => {
      if (++blocks === 2) abort.abort();
    });
    await expect(run).rejects.toBeInstanceOf(CancelledFailure);
    expect(blocks).toBe(2);
    await expect(topk(dyadic(3, 4, 1), db, { k: 1 })).rejects.toThrow(/4 dims but database rows have 8/);
  });
});
