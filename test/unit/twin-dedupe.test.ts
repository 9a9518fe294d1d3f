/*
 * Scenarios (twin/dedupe on manifests, indexes and float32 matrices written by the test):
 * - Five listings of seeded random unit vectors, two of which share a near-identical image:
 *   every listing flags as many images as it has, the flags and pairs equal a brute-force
 *   reading of the rule, and the near-identical pair is the top candidate, listing a's
 *   image first, with both listings' titles, categories, ASINs and flag counts.
 * - With minScore only the near-identical pair is left; unrelated listings are not paired.
 * - Generated images are left out (an exact copy of another listing's photo flags nothing).
 * - The same photo in two listings (one sha256, two index rows) is a score-1 candidate
 *   flagged from both sides.
 * - The same inputs give a byte-identical items artifact.
 * - A matrix whose size disagrees with its index, a missing artifact, and an index from
 *   another manifest fail without retries, saying what to pass.
 * - Progress heartbeats count listings; cancelling stops the search.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { createDedupeCandidates } from '../../activities/twin/dedupe.js';
import { seededRandom } from '../../activities/twin/pairs.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

const DIMS = 16;

interface Photo { name: string; vector: Float32Array; role?: 'listing' | 'review' | 'generated' }
interface Listing { id: string; photos: Photo[] }
interface Inputs { instances: ArtifactRef; embeddings: ArtifactRef; index: ArtifactRef }
interface Outputs { candidates: ArtifactRef; counts: Record<string, number> }

let home: HomeLayout;
let store: ArtifactStore;
let dedupe: ReturnType<typeof createDedupeCandidates>;

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-dedupe-')));
  store = new ArtifactStore(home.artifactsDir);
  dedupe = createDedupeCandidates({ store, home, blockRows: 4 });
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

const random = seededRandom(42);
function unit(v: Float32Array): Float32Array {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / norm);
}
const randomUnit = () => unit(Float32Array.from({ length: DIMS }, () => random() * 2 - 1));
const nearCopy = (v: Float32Array) => unit(v.map((x) => x + (random() - 0.5) * 0.02));
const sha = (name: string) => createHash('sha256').update(name).digest('hex');
const jsonl = (rows: unknown[]) => store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

/** A manifest and what embed/images writes for it: a row for every photo, generated ones too. */
async function embedded(listings: Listing[], tamper = (index: object[]) => index): Promise<Inputs> {
  const rows: ManifestRow[] = listings.map((l, i) => ({
    instance_id: l.id, asins: [l.id], title: `title ${l.id}`, category: `cat-${i % 2}`,
    images: l.photos.map((p) => ({ path: `/store/${p.name}.jpg`, role: p.role ?? 'listing', sha256: sha(p.name) })),
  }));
  const embeddedPhotos = listings.flatMap((l) => l.photos.map((p) => ({ l, p })));
  const index = embeddedPhotos.map(({ l, p }, row) => ({ row, instance_id: l.id, image: `/store/${p.name}.jpg`, sha256: sha(p.name) }));
  const matrix = new Float32Array(embeddedPhotos.length * DIMS);
  embeddedPhotos.forEach(({ p }, row) => matrix.set(p.vector, row * DIMS));
  const embeddings = await store.putBytes(new Uint8Array(matrix.buffer));
  embeddings.counts = { rows: embeddedPhotos.length, dims: DIMS };
  return { instances: await jsonl(rows), embeddings, index: await jsonl(tamper(index)) };
}

function stageInput(w: Inputs & Record<string, unknown>, stageId = 'dedupe'): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'twin/dedupe', kindVersion: '1', with: w as unknown as JsonObject, shellEnv: {} };
}

async function run(w: Inputs & Record<string, unknown>, stageId?: string, env = new MockActivityEnvironment({ attempt: 1 })) {
  const result = (await env.run(dedupe, stageInput(w, stageId))) as StageActivityResult;
  const outputs = result.outputs as unknown as Outputs;
  const text = await fs.readFile((await store.file(outputs.candidates)), 'utf8');
  return { ...outputs, items: text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ReviewItem) };
}

/** The rule, by brute force: each listing's m best other-listing images, grouped into pairs with flag counts. */
function expectedPairs(listings: Listing[]): Map<string, { score: number; flags: [number, number] }> {
  const real = listings.map((l) => l.photos.filter((p) => p.role !== 'generated'));
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const pairs = new Map<string, { score: number; flags: [number, number] }>();
  listings.forEach((l, p) => {
    const others = listings.flatMap((o, q) => (q === p ? [] : real[q]!.map((photo) => ({ q, score: Math.max(...real[p]!.map((mine) => dot(mine.vector, photo.vector))) }))));
    for (const flag of others.sort((x, y) => y.score - x.score).slice(0, real[p]!.length)) {
      const other = listings[flag.q]!.id;
      const key = l.id < other ? `dup:${l.id}|${other}` : `dup:${other}|${l.id}`;
      const pair = pairs.get(key) ?? { score: -Infinity, flags: [0, 0] };
      pair.flags[l.id < other ? 0 : 1]++;
      pair.score = Math.max(pair.score, flag.score);
      pairs.set(key, pair);
    }
  });
  return pairs;
}

const photos = (prefix: string, n: number): Photo[] => Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${i}`, vector: randomUnit(), role: i ? 'review' : 'listing' }));

describe('twin/dedupe', () => {
  const listings: Listing[] = [
    { id: 'B07', photos: photos('b07', 3) },
    { id: 'A12', photos: photos('a12', 2) },
    { id: 'C33', photos: photos('c33', 2) },
    { id: 'D40', photos: photos('d40', 3) },
    { id: 'E51', photos: photos('e51', 1) },
  ];
  listings[1]!.photos[1]!.vector = nearCopy(listings[0]!.photos[0]!.vector);
  // An exact copy of C33's photo, but generated: dedupe must not see it.
  listings[3]!.photos.push({ name: 'd40-generated', vector: listings[2]!.photos[0]!.vector, role: 'generated' });
  let inputs: Inputs;
  beforeAll(async () => { inputs = await embedded(listings); });

  it('flags m images per listing and groups them into the pairs the rule gives', async () => {
    const out = await run({ ...inputs });
    expect(out.counts).toEqual({ products: 5, images: 11, flags: 11, candidates: out.items.length, search: { method: 'exact', precision: 'f32' } });
    const expected = expectedPairs(listings);
    expect(out.items.map((i) => i.id).sort()).toEqual([...expected.keys()].sort());
    for (const item of out.items) {
      const want = expected.get(item.id)!;
      expect(item.score).toBeCloseTo(want.score, 5);
      expect(item.metadata!.flags).toEqual({ from_1: want.flags[0], from_2: want.flags[1] });
    }
    const scores = out.items.map((i) => i.score!);
    expect(scores).toEqual([...scores].sort((x, y) => y - x));
  });

  it('puts the listings sharing a near-identical image first, listing a\'s image first', async () => {
    const [top] = (await run({ ...inputs })).items;
    expect(top!.id).toBe('dup:A12|B07');
    expect(top!.score).toBeGreaterThan(0.99);
    expect(top!.images.map((im) => [im.instance_id, im.sha256, im.role])).toEqual([['A12', sha('a12-1'), 'review'], ['B07', sha('b07-0'), 'listing']]);
    expect(top!.images.every((im) => !('path' in im))).toBe(true);
    expect(top!.images[0]!.sha256).toBe(sha('a12-1'));
    expect(top!.question).toMatch(/same product/);
    expect(top!.metadata).toMatchObject({
      instance_1: 'A12', instance_2: 'B07', title_1: 'title A12', title_2: 'title B07',
      category_1: 'cat-1', category_2: 'cat-0', asins_1: ['A12'], asins_2: ['B07'],
    });
  });

  it('finds the same candidates through an approximate graph on a small set, and says so in its counts', async () => {
    const exact = await run({ ...inputs });
    const approximate = await run({ ...inputs, search: { method: 'hnsw' } });
    expect(approximate.items).toEqual(exact.items);
    expect(approximate.counts.search).toEqual({ method: 'hnsw', precision: 'i8', recall: 1, sampled: 11 });
    const again = await run({ ...inputs, search: { method: 'hnsw', precision: 'f16', recallSample: 4 } }, 'again');
    expect(again.counts.search).toEqual({ method: 'hnsw', precision: 'f16', recall: 1, sampled: 4 });
  });

  it('keeps only flags at or above minScore, so unrelated listings are not paired', async () => {
    const out = await run({ ...inputs, minScore: 0.9 });
    expect(out.items.map((i) => i.id)).toEqual(['dup:A12|B07']);
    expect(out.counts).toMatchObject({ flags: 2, candidates: 1 });
    expect(out.items[0]!.metadata!.flags).toEqual({ from_1: 1, from_2: 1 });
  });

  it('makes the same photo in two listings a score-1 candidate flagged from both sides', async () => {
    const shared = randomUnit();
    const twins = await embedded([
      { id: 'P1', photos: [{ name: 'shared', vector: shared }, ...photos('p1', 1)] },
      { id: 'P2', photos: [...photos('p2', 1), { name: 'shared', vector: shared }] },
      { id: 'P3', photos: photos('p3', 2) },
    ]);
    const [top] = (await run({ ...twins })).items;
    expect(top).toMatchObject({ id: 'dup:P1|P2', score: 1 });
    expect(top!.images.map((im) => [im.instance_id, im.sha256])).toEqual([['P1', sha('shared')], ['P2', sha('shared')]]);
    expect((top!.metadata!.flags as { from_1: number }).from_1).toBeGreaterThanOrEqual(1);
    expect((top!.metadata!.flags as { from_2: number }).from_2).toBeGreaterThanOrEqual(1);
  });

  it('writes byte-identical candidates for the same inputs', async () => {
    const [a, b] = [await run({ ...inputs }, 'first'), await run({ ...inputs }, 'second')];
    expect(a.candidates.sha256).toBe(b.candidates.sha256);
  });

  it('refuses a matrix that disagrees with its index, naming both sizes', async () => {
    const short = await store.putBytes(new Uint8Array(10 * DIMS * 4));
    const err = await run({ ...inputs, embeddings: { ...short, counts: { dims: DIMS } } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(String((err as Error).message)).toMatch(/640 bytes, but with.index has 12 rows of 16 float32s .*same embed\/images stage/);
    await expect(run({ ...inputs, dims: 15 })).rejects.toThrow(/dims from with.dims/);
  });

  it('refuses a missing artifact and an index from another manifest', async () => {
    const gone = { uri: `artifact:sha256:${'0'.repeat(64)}`, sha256: '0'.repeat(64), bytes: 1 };
    await expect(run({ ...inputs, embeddings: gone })).rejects.toMatchObject({ type: 'ArtifactMissing', nonRetryable: true });
    const stray = await embedded(listings, (index) => index.map((entry, row) => (row === 4 ? { ...entry, instance_id: 'Z99' } : entry)));
    const err = await run({ ...stray }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(String((err as Error).message)).toMatch(/instance Z99, which with.instances does not hold; pass the manifest that embed\/images read/);
  });

  it('heartbeats progress in listings and stops when cancelled', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: Array<{ progress: { done: number; total: number; unit: string } }> = [];
    env.on('heartbeat', (d: unknown) => beats.push(d as (typeof beats)[number]));
    await run({ ...inputs }, 'beats', env);
    expect(beats.at(-1)!.progress).toEqual({ done: 5, total: 5, unit: 'listings' });
    const cancelled = new MockActivityEnvironment({ attempt: 1 });
    cancelled.once('heartbeat', () => cancelled.cancel());
    await expect(run({ ...inputs }, 'cancel', cancelled)).rejects.toBeInstanceOf(CancelledFailure);
  });
});
