/*
 * Scenarios (similarity search and the kinds built on it, on seeded random unit vectors):
 * - The onnxruntime GEMM scorer gives the same dot products as a plain loop.
 * - Walking groups in blocks sees every group's rows exactly once, whatever the block size.
 * - TopList keeps the k best, ties broken by the lower id.
 * - twin/dedupe: two listings sharing a near-identical image become the top candidate; each
 *   listing flags exactly as many images as it has; items name both listings.
 * - twin/shortlist: exact instance scores (max over image pairs, checked by brute force), k
 *   within [m, 2m], byte-identical for a seed; sameCategory; a merged manifest maps the
 *   merged listings' rows to one instance; a matrix that disagrees with its index fails.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/index.js';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { ManifestRow } from '../../activities/data/manifest.js';
import { toLittleEndian, dot, type Matrix } from '../../activities/embed/matrix.js';
import { forEachGroupScores } from '../../activities/similarity/groups.js';
import { Scorer } from '../../activities/similarity/scorer.js';
import { TopList } from '../../activities/similarity/top-list.js';
import type { ReviewItem } from '../../activities/review/items.js';
import { seededRandom } from '../../activities/twin/pairs.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

let home: HomeLayout;
let acts: ReturnType<typeof createActivities>;
let store: ArtifactStore;

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-similarity-')));
  acts = createActivities({ home });
  store = new ArtifactStore(home.artifactsDir);
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function unitVectors(rows: number, dims: number, seed: number): Matrix {
  const random = seededRandom(seed);
  const data = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += (data[r * dims + d] = random() - 0.5) ** 2;
    for (let d = 0; d < dims; d++) data[r * dims + d]! /= Math.sqrt(norm);
  }
  return { data, rows, dims };
}
const rowOf = (m: Matrix, r: number) => m.data.subarray(r * m.dims, (r + 1) * m.dims);

describe('similarity search', () => {
  it('scores a query block against every row as a plain loop does', async () => {
    const m = unitVectors(257, 24, 1);
    const scorer = await Scorer.open(m, { threads: 2 });
    const scores = await scorer.scores(m.data.slice(5 * 24, 9 * 24), 4);
    await scorer.release();
    expect(scores).toHaveLength(4 * 257);
    for (let q = 0; q < 4; q++) for (const c of [0, 77, 256]) expect(scores[q * 257 + c]).toBeCloseTo(dot(rowOf(m, 5 + q), rowOf(m, c)), 5);
  });

  it('visits every group once with all its rows, for any block size', async () => {
    const m = unitVectors(50, 8, 2);
    const groups = [[0, 1, 2], [], [3], Array.from({ length: 40 }, (_, i) => 4 + i), [44, 45, 46, 47, 48, 49]];
    const scorer = await Scorer.open(m);
    for (const blockRows of [1, 5, 1000]) {
      const seen: Array<[number, number]> = [];
      await forEachGroupScores(scorer, m, groups, { blockRows }, (g, scoresOf) => {
        seen.push([g, groups[g]!.length]);
        const last = groups[g]!.length - 1;
        expect(scoresOf(last)[groups[g]![last]!]).toBeCloseTo(1, 5);
      });
      expect(seen).toEqual([[0, 3], [2, 1], [3, 40], [4, 6]]);
    }
    await scorer.release();
  });

  it('keeps the k best entries with ties broken by the lower id', () => {
    const top = new TopList(3);
    for (const [score, id] of [[0.5, 9], [0.9, 4], [0.5, 2], [0.1, 1], [0.9, 3], [0.5, 1]] as const) top.offer(score, id);
    expect([...top.ids.subarray(0, top.size)]).toEqual([3, 4, 1]);
    expect([...top.scores]).toEqual([0.9, 0.9, 0.5]);
  });
});

interface Fixture { instances: ArtifactRef; embeddings: ArtifactRef; index: ArtifactRef; rows: ManifestRow[]; matrix: Matrix; owner: number[] }

/** `sizes[i]` images for instance i, random vectors, with optional overrides of rows. */
async function fixture(sizes: number[], seed: number, edit?: (m: Matrix, owner: number[]) => void, categories?: string[]): Promise<Fixture> {
  const owner = sizes.flatMap((n, i) => Array<number>(n).fill(i));
  const matrix = unitVectors(owner.length, 16, seed);
  edit?.(matrix, owner);
  const rows: ManifestRow[] = sizes.map((_, i) => ({
    instance_id: `P${String(i).padStart(3, '0')}`, asins: [`P${String(i).padStart(3, '0')}`], title: `product ${i}`,
    category: categories?.[i] ?? 'mug', images: [],
  }));
  const index = owner.map((i, r) => {
    const sha256 = r.toString(16).padStart(64, 'a');
    rows[i]!.images.push({ path: `/store/${r}.jpg`, role: 'listing', sha256 });
    return { row: r, instance_id: rows[i]!.instance_id, image: `/store/${r}.jpg`, sha256 };
  });
  const jsonl = (xs: unknown[]) => store.putBytes(xs.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const embeddings = await store.putBytes(toLittleEndian(matrix.data));
  embeddings.counts = { rows: matrix.rows, dims: matrix.dims };
  return { instances: await jsonl(rows), embeddings, index: await jsonl(index), rows, matrix, owner };
}

function run(activity: (i: StageActivityInput) => Promise<StageActivityResult>, uses: string, w: unknown, stageId = uses.replace('/', '-')) {
  const input: StageActivityInput = { runId: 'r1', stageId, uses, kindVersion: '1', with: w as JsonObject, shellEnv: {} };
  return new MockActivityEnvironment({ attempt: 1 }).run(activity, input) as Promise<StageActivityResult>;
}
async function items(result: StageActivityResult): Promise<{ items: ReviewItem[]; bytes: string; counts: Record<string, number> }> {
  const out = result.outputs as unknown as { candidates: ArtifactRef; counts: Record<string, number> };
  const bytes = await fs.readFile(store.resolve(out.candidates), 'utf8');
  return { items: bytes.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ReviewItem), bytes, counts: out.counts };
}

describe('twin/dedupe', () => {
  it('puts two listings that share a near-identical image at the top, flagging m images per listing', async () => {
    // Row 4 (listing 1) becomes a copy of row 0 (listing 0) with a little noise.
    const f = await fixture([3, 2, 4, 1], 3, (m) => {
      for (let d = 0; d < m.dims; d++) m.data[4 * m.dims + d] = m.data[d]! + 0.01 * Math.sin(d);
    });
    const { items: found, counts } = await items(await run(acts.dedupeCandidates, 'twin/dedupe', { instances: f.instances, embeddings: f.embeddings, index: f.index }));
    expect(counts).toMatchObject({ products: 4, images: 10, flags: 10 });
    expect(found[0]!.id).toBe('dup:P000|P001');
    expect(found[0]!.score).toBeGreaterThan(0.99);
    expect(found[0]!.images.map((im) => im.instance_id)).toEqual(['P000', 'P001']);
    expect(found[0]!.metadata).toMatchObject({ instance_1: 'P000', instance_2: 'P001', title_1: 'product 0' });
    expect(found.every((it, i) => i === 0 || it.score! <= found[i - 1]!.score!)).toBe(true);
  });
});

describe('twin/shortlist', () => {
  const SIZES = [2, 3, 1, 4, 2, 2, 3, 1, 5, 2];

  it('ranks other instances by their best image pair, exactly, with k drawn from [m, 2m]', async () => {
    const f = await fixture(SIZES, 4);
    const { items: found } = await items(await run(acts.shortlistHardNegatives, 'twin/shortlist', { instances: f.instances, embeddings: f.embeddings, index: f.index, seed: 7 }));
    const best = (a: number, b: number) => Math.max(...f.owner.flatMap((oa, ra) => (oa !== a ? [] : f.owner.flatMap((ob, rb) => (ob === b ? [dot(rowOf(f.matrix, ra), rowOf(f.matrix, rb))] : [])))));
    for (let a = 0; a < SIZES.length; a++) {
      const mine = found.filter((it) => it.group === f.rows[a]!.instance_id);
      expect(mine.length).toBeGreaterThanOrEqual(SIZES[a]!);
      expect(mine.length).toBeLessThanOrEqual(Math.min(2 * SIZES[a]!, SIZES.length - 1));
      const expected = SIZES.map((_, b) => b).filter((b) => b !== a).map((b) => ({ b, s: best(a, b) })).sort((x, y) => y.s - x.s).slice(0, mine.length);
      expect(mine.map((it) => it.metadata!.candidate)).toEqual(expected.map((e) => f.rows[e.b]!.instance_id));
      mine.forEach((it, i) => expect(it.score).toBeCloseTo(expected[i]!.s, 5));
      expect(mine.map((it) => it.metadata!.rank)).toEqual(mine.map((_, i) => i + 1));
    }
  });

  it('gives byte-identical candidates for a seed and honours sameCategory', async () => {
    const cats = SIZES.map((_, i) => (i % 2 ? 'mug' : 'cup'));
    const f = await fixture(SIZES, 5, undefined, cats);
    const w = { instances: f.instances, embeddings: f.embeddings, index: f.index, seed: 3 };
    const one = await items(await run(acts.shortlistHardNegatives, 'twin/shortlist', w, 's1'));
    const two = await items(await run(acts.shortlistHardNegatives, 'twin/shortlist', w, 's2'));
    expect(two.bytes).toBe(one.bytes);
    const same = await items(await run(acts.shortlistHardNegatives, 'twin/shortlist', { ...w, sameCategory: true }, 's3'));
    expect(same.items.length).toBeGreaterThan(0);
    expect(same.items.every((it) => it.metadata!.anchor_category === it.metadata!.candidate_category)).toBe(true);
  });

  it('maps the rows of merged listings to their merged instance', async () => {
    const f = await fixture([2, 2, 2], 6);
    const merged: ManifestRow[] = [
      { ...f.rows[0]!, asins: ['P000', 'P001'], images: [...f.rows[0]!.images, ...f.rows[1]!.images] },
      f.rows[2]!,
    ];
    const instances = await store.putBytes(merged.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const { items: found } = await items(await run(acts.shortlistHardNegatives, 'twin/shortlist', { instances, embeddings: f.embeddings, index: f.index, kMin: 1, kMax: 1 }));
    expect(found.map((it) => it.id)).toEqual(['hn:P000|P002', 'hn:P002|P000']);
  });

  it('refuses embeddings that do not match their index, saying what to pass', async () => {
    const f = await fixture([2, 2], 8);
    const short = await store.putBytes(new Uint8Array(16 * 4 * 3));
    short.counts = { rows: 3, dims: 16 };
    await expect(run(acts.shortlistHardNegatives, 'twin/shortlist', { instances: f.instances, embeddings: short, index: f.index }))
      .rejects.toThrow(/does not hold 4 rows .* pass the embeddings and index of the same embed\/images stage/);
  });
});
