/*
 * Scenarios (activities/similarity/approximate.ts on seeded random vectors, against topk's
 * exact search and a brute-force recall computed here):
 * - A generous graph over a small set finds every exact neighbour (recall 1), its scores are
 *   the exact float32 cosines, lists are best first, excluded rows never appear.
 * - A deliberately poor graph (few edges, small ef, i8) misses some; the recall sampledRecall
 *   reports over every row equals the brute-force recall of the lists.
 * - Built on one thread, the same rows give byte-identical lists, whatever the precision.
 * - sampleRows draws distinct rows, ascending, the same for the same seed.
 * - An aborted signal stops the build with a CancelledFailure.
 */
import { CancelledFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import type { Matrix } from '../../activities/embed/matrix.js';
import { topk } from '../../activities/embed/topk.js';
import { hnswTopk, sampledRecall, sampleRows, type HnswOptions, type NeighbourLists } from '../../activities/similarity/approximate.js';
import { seededRandom } from '../../activities/twin/pairs.js';

/** Unit rows around `clusters` random centres, so neighbours are meaningful (like image embeddings). */
function clustered(rows: number, dims: number, clusters: number, seed: number): Matrix {
  const random = seededRandom(seed);
  const centres = Float32Array.from({ length: clusters * dims }, () => random() * 2 - 1);
  const data = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += (data[r * dims + d] = centres[(r % clusters) * dims + d]! + (random() - 0.5)) ** 2;
    for (let d = 0; d < dims; d++) data[r * dims + d] = data[r * dims + d]! / Math.sqrt(norm);
  }
  return { data, rows, dims };
}

const GOOD: HnswOptions = { precision: 'f32', connectivity: 32, expansionAdd: 256, expansionSearch: 256, reproducible: true, threads: 2 };
const POOR: HnswOptions = { precision: 'i8', connectivity: 4, expansionAdd: 8, expansionSearch: 8, reproducible: true, threads: 2 };
const listOf = (l: NeighbourLists, q: number) => Array.from(l.indices.subarray(l.offsets[q]!, l.offsets[q + 1]!));
const group = (q: number) => ({ start: q - (q % 4), end: q - (q % 4) + 4 });

describe('hnswTopk', () => {
  it('finds the exact neighbours with a generous graph, scored exactly, without excluded rows', async () => {
    const m = clustered(400, 24, 20, 1);
    const found = await hnswTopk(m, { ...GOOD, k: () => 6, exclude: group });
    const exact = await topk(m, m, { k: 6, exclude: group });
    for (let q = 0; q < m.rows; q++) {
      expect(listOf(found, q)).toEqual(listOf(exact, q));
      for (let i = found.offsets[q]!; i < found.offsets[q + 1]!; i++) expect(found.scores[i]).toBeCloseTo(exact.scores[i]!, 6);
      expect(listOf(found, q).some((c) => c >= group(q).start && c < group(q).end)).toBe(false);
    }
    expect(await sampledRecall(m, found, { sample: 100, seed: 3, k: () => 6, exclude: group })).toEqual({ recall: 1, sampled: 100 });
  });

  it('reports the recall a poor graph really has', async () => {
    const m = clustered(3000, 32, 300, 2);
    const k = (q: number) => 5 + (q % 3);
    const found = await hnswTopk(m, { ...POOR, k });
    const exact = await topk(m, m, { k });
    let hits = 0;
    let wanted = 0;
    for (let q = 0; q < m.rows; q++) {
      const truth = new Set(listOf(exact, q));
      wanted += truth.size;
      hits += listOf(found, q).filter((c) => truth.has(c)).length;
    }
    const { recall, sampled } = await sampledRecall(m, found, { sample: m.rows, seed: 0, k });
    expect(sampled).toBe(m.rows);
    expect(recall).toBeCloseTo(hits / wanted, 10);
    expect(recall).toBeLessThan(1);
    expect(recall).toBeGreaterThan(0.3);
  });

  it('gives byte-identical lists for the same rows when built on one thread', async () => {
    const m = clustered(5000, 16, 500, 4);
    for (const precision of ['i8', 'f16'] as const) {
      const [a, b] = [await hnswTopk(m, { ...POOR, precision, k: () => 8 }), await hnswTopk(m, { ...POOR, precision, k: () => 8 })];
      expect(Buffer.from(a.indices.buffer).equals(Buffer.from(b.indices.buffer))).toBe(true);
      expect(Array.from(a.offsets)).toEqual(Array.from(b.offsets));
    }
  });

  it('stops when its signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(hnswTopk(clustered(50, 8, 5, 5), { ...GOOD, k: () => 3, signal: controller.signal })).rejects.toBeInstanceOf(CancelledFailure);
  });
});

describe('sampleRows', () => {
  it('draws distinct rows in ascending order, the same for the same seed, all of them when asked for more', () => {
    const a = Array.from(sampleRows(1000, 50, seededRandom(7)));
    expect(new Set(a).size).toBe(50);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(Array.from(sampleRows(1000, 50, seededRandom(7)))).toEqual(a);
    expect(Array.from(sampleRows(1000, 50, seededRandom(8)))).not.toEqual(a);
    expect(Array.from(sampleRows(5, 50, seededRandom(7)))).toEqual([0, 1, 2, 3, 4]);
  });
});
