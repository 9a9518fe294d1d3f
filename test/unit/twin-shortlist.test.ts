/*
 * Scenarios (twin/shortlist on manifests, indexes and float32 matrices written by the test):
 * - Nine instances of seeded random unit vectors in two categories, blocks smaller than some
 *   instances: every instance pair's score equals the brute-force max over image pairs, each
 *   anchor's candidates are the brute-force top k, k lies in [m, 2m], items come in manifest
 *   order then rank, and the image pair shown (anchor first) is the one that scores.
 * - k is keyed by (seed, instance id): the same for a reordered manifest, different for
 *   another seed; drawK covers exactly the integers in [kMin m, kMax m]; maxPerInstance caps.
 * - The same inputs and seed give a byte-identical items artifact.
 * - sameCategory searches each category on its own rows: each anchor's candidates are the
 *   brute-force top k within its category, with the same exact scores and scoring image pairs.
 * - A merged manifest: a listing's images folded into another instance count for it, rows
 *   of an image no instance holds are ignored, and generated images need no row.
 * - A matrix whose size disagrees with its index and a missing index fail without retries.
 * - Progress heartbeats count instances.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { seededRandom } from '../../activities/twin/pairs.js';
import { createShortlistHardNegatives, drawK } from '../../activities/twin/shortlist.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

const DIMS = 24;

interface Photo { name: string; vector: Float32Array; role?: 'listing' | 'review' | 'generated' }
interface Instance { id: string; category: string; photos: Photo[]; asins?: string[] }
interface Inputs { instances: ArtifactRef; embeddings: ArtifactRef; index: ArtifactRef }
interface Meta { anchor: string; candidate: string; rank: number; k: number; anchor_category: string; candidate_category: string }

let home: HomeLayout;
let store: ArtifactStore;
let shortlist: ReturnType<typeof createShortlistHardNegatives>;

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-shortlist-')));
  store = new ArtifactStore(home.artifactsDir);
  shortlist = createShortlistHardNegatives({ store, home, blockRows: 4 });
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

const random = seededRandom(7);
function randomUnit(): Float32Array {
  const v = Float32Array.from({ length: DIMS }, () => random() * 2 - 1);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / norm);
}
const sha = (name: string) => createHash('sha256').update(name).digest('hex');
const jsonl = (rows: unknown[]) => store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const real = (i: Instance) => i.photos.filter((p) => p.role !== 'generated');
const bySha = new Map<string, Float32Array>();

function instance(id: string, category: string, n: number): Instance {
  const photos = Array.from({ length: n }, (_, i): Photo => ({ name: `${id}-${i}`, vector: randomUnit(), role: i ? 'review' : 'listing' }));
  for (const p of photos) bySha.set(sha(p.name), p.vector);
  return { id, category, photos };
}

/** The manifest, and embeddings of `embeddedAs` (default: the same instances; real photos only). */
async function embedded(manifest: Instance[], embeddedAs: Instance[] = manifest): Promise<Inputs> {
  const rows: ManifestRow[] = manifest.map((m) => ({
    instance_id: m.id, asins: m.asins ?? [m.id], title: `title ${m.id}`, category: m.category,
    images: m.photos.map((p) => ({ path: `/store/${p.name}.jpg`, role: p.role ?? 'listing', sha256: sha(p.name) })),
  }));
  const photos = embeddedAs.flatMap((m) => real(m).map((p) => ({ m, p })));
  const matrix = new Float32Array(photos.length * DIMS);
  photos.forEach(({ p }, row) => matrix.set(p.vector, row * DIMS));
  const embeddings = await store.putBytes(new Uint8Array(matrix.buffer));
  embeddings.counts = { rows: photos.length, dims: DIMS };
  const index = photos.map(({ m, p }, row) => ({ row, instance_id: m.id, image: `/store/${p.name}.jpg`, sha256: sha(p.name) }));
  return { instances: await jsonl(rows), embeddings, index: await jsonl(index) };
}

async function run(w: Record<string, unknown>, stageId = 'shortlist', env = new MockActivityEnvironment({ attempt: 1 })) {
  const input: StageActivityInput = { runId: 'r1', stageId, uses: 'twin/shortlist', kindVersion: '1', with: w as JsonObject, shellEnv: {} };
  const result = (await env.run(shortlist, input)) as StageActivityResult;
  const outputs = result.outputs as unknown as { candidates: ArtifactRef; counts: Record<string, number> };
  const text = await fs.readFile((await store.file(outputs.candidates)), 'utf8');
  return { ...outputs, items: text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ReviewItem) };
}

/** max cosine over image pairs, by brute force. */
const pairScore = (a: Instance, b: Instance) => Math.max(...real(a).flatMap((x) => real(b).map((y) => dot(x.vector, y.vector))));
const meta = (item: ReviewItem) => item.metadata as unknown as Meta;

const SIZES = [3, 1, 4, 2, 5, 1, 3, 2, 4];
const instances = SIZES.map((n, i) => instance(`I${i}`, i % 3 === 0 ? 'mug' : 'shoe', n));
instances[2]!.photos.push({ name: 'I2-generated', vector: randomUnit(), role: 'generated' });

describe('twin/shortlist', () => {
  let inputs: Inputs;
  beforeAll(async () => { inputs = await embedded(instances); });

  it('shortlists the brute-force top k by exact max image-pair cosine, k in [m, 2m]', async () => {
    const out = await run({ ...inputs, seed: 3 });
    let at = 0;
    instances.forEach((anchor) => {
      const mine = out.items.filter((it) => it.group === anchor.id);
      expect(out.items.slice(at, at + mine.length)).toEqual(mine); // grouped, in manifest order
      at += mine.length;
      const m = real(anchor).length;
      const k = meta(mine[0]!).k;
      expect(k).toBeGreaterThanOrEqual(m);
      expect(k).toBeLessThanOrEqual(2 * m);
      const truth = instances.filter((b) => b !== anchor).map((b) => ({ id: b.id, score: pairScore(anchor, b) })).sort((x, y) => y.score - x.score);
      expect(mine.map((it) => meta(it).candidate)).toEqual(truth.slice(0, k).map((t) => t.id));
      mine.forEach((item, rank) => {
        expect(item.id).toBe(`hn:${anchor.id}|${meta(item).candidate}`);
        expect(meta(item).rank).toBe(rank + 1);
        expect(item.score).toBeCloseTo(truth[rank]!.score, 5);
        expect(item.images.map((im) => im.instance_id)).toEqual([anchor.id, meta(item).candidate]);
        expect(dot(bySha.get(item.images[0]!.sha256)!, bySha.get(item.images[1]!.sha256)!)).toBeCloseTo(item.score!, 5);
      });
    });
    expect(out.counts).toEqual({ instances: 9, candidates: out.items.length, search: { method: 'exact', precision: 'f32' } });
  });

  it('keys k by seed and instance id, not by manifest order, and can cap it', async () => {
    const ks = (items: ReviewItem[]) => Object.fromEntries(items.map((it) => [it.group, meta(it).k]));
    const forward = ks((await run({ ...inputs, seed: 3 })).items);
    const backward = ks((await run({ ...(await embedded([...instances].reverse())), seed: 3 })).items);
    expect(backward).toEqual(forward);
    const seeds = [0, 1, 2, 4, 5].map((seed) => instances.map((i) => drawK(i.id, real(i).length, { seed, kMin: 1, kMax: 2 })).join());
    expect(new Set(seeds).size).toBeGreaterThan(1);
    const drawn = new Set(Array.from({ length: 400 }, (_, i) => drawK(`id-${i}`, 3, { seed: 0, kMin: 1, kMax: 2 })));
    expect([...drawn].sort()).toEqual([3, 4, 5, 6]);
    expect(drawK('x', 3, { seed: 0, kMin: 1, kMax: 2, maxPerInstance: 2 })).toBe(2);
    const capped = await run({ ...inputs, seed: 3, maxPerInstance: 2 });
    expect(Math.max(...capped.items.map((it) => meta(it).rank))).toBe(2);
  });

  it('writes byte-identical candidates for the same inputs and seed', async () => {
    const [a, b] = [await run({ ...inputs, seed: 9 }, 'one'), await run({ ...inputs, seed: 9 }, 'two')];
    expect(a.candidates.sha256).toBe(b.candidates.sha256);
  });

  it('keeps candidates in the anchor\'s category when sameCategory is set', async () => {
    const out = await run({ ...inputs, seed: 3, sameCategory: true });
    expect(out.items.length).toBeGreaterThan(0);
    for (const item of out.items) {
      expect(meta(item).candidate_category).toBe(meta(item).anchor_category);
      const [a, b] = [instances.find((i) => i.id === meta(item).anchor)!, instances.find((i) => i.id === meta(item).candidate)!];
      expect(item.score).toBeCloseTo(pairScore(a, b), 5);
      // The pair shown is the one that scores: each category's own search maps its rows back.
      expect(item.images.map((im) => im.instance_id)).toEqual([a.id, b.id]);
      expect(dot(bySha.get(item.images[0]!.sha256)!, bySha.get(item.images[1]!.sha256)!)).toBeCloseTo(item.score!, 5);
    }
    // The categories interleave in the manifest; each is searched on its own, and the lists are
    // the whole-set brute force restricted to the category, in manifest order.
    expect([...new Set(out.items.map((it) => it.group))]).toEqual(instances.map((i) => i.id));
    for (const anchor of instances) {
      const mine = out.items.filter((it) => it.group === anchor.id);
      const truth = instances.filter((b) => b !== anchor && b.category === anchor.category).map((b) => ({ id: b.id, score: pairScore(anchor, b) })).sort((x, y) => y.score - x.score);
      expect(mine.map((it) => meta(it).candidate)).toEqual(truth.slice(0, meta(mine[0]!).k).map((t) => t.id));
    }
    // Three mugs: each has at most two candidates, however large its k.
    expect(out.items.filter((it) => meta(it).anchor_category === 'mug')).toHaveLength(6);
  });

  it('shortlists through an approximate graph, reproducibly, with its recall against exact search in counts', async () => {
    const exact = await run({ ...inputs, seed: 3 });
    const [a, b] = [await run({ ...inputs, seed: 3, search: { method: 'hnsw' } }, 'hnsw-a'), await run({ ...inputs, seed: 3, search: { method: 'hnsw' } }, 'hnsw-b')];
    expect(a.candidates.sha256).toBe(b.candidates.sha256);
    // Nine instances: every image asks for m + 4k images, which is about all of them, so the lists are exact.
    expect(a.items).toEqual(exact.items);
    expect(a.counts.search).toEqual({ method: 'hnsw', precision: 'i8', recall: 1, sampled: 9 });
    const grouped = await run({ ...inputs, seed: 3, sameCategory: true, search: { method: 'hnsw', recallSample: 3 } }, 'hnsw-c');
    expect(grouped.items).toEqual((await run({ ...inputs, seed: 3, sameCategory: true })).items);
    expect(grouped.counts.search).toMatchObject({ method: 'hnsw', recall: 1, sampled: 3 });
  });

  it('maps a merged manifest by image digest, ignoring rows of images it does not hold', async () => {
    const [a, b, c, d] = [instance('M1', 'mug', 2), instance('M2', 'mug', 1), instance('M3', 'mug', 2), instance('M4', 'mug', 1)];
    const dropped = instance('M9', 'mug', 1);
    dropped.photos[0]!.vector = b.photos[0]!.vector.map((x) => -x); // close to nothing that stays
    const merged = { ...a, photos: [...a.photos, ...b.photos], asins: ['M1', 'M2'] };
    c.photos.push({ name: 'M3-generated', vector: randomUnit(), role: 'generated' });
    const out = await run({ ...(await embedded([merged, c, d], [a, b, c, d, dropped])), seed: 1, kMin: 2, kMax: 2 });
    expect(out.counts).toMatchObject({ instances: 3, candidates: 6 });
    expect(out.items.flatMap((it) => [meta(it).anchor, meta(it).candidate])).not.toContain('M2');
    expect(out.items.flatMap((it) => [meta(it).anchor, meta(it).candidate])).not.toContain('M9');
    const m1m3 = out.items.find((it) => it.id === 'hn:M1|M3')!;
    expect(m1m3.score).toBeCloseTo(pairScore(merged, c), 5);
    expect(meta(m1m3).k).toBe(6); // 3 images after the merge: k = 2 x 3 (only 2 others exist)
  });

  it('refuses a matrix that disagrees with its index, and a missing index', async () => {
    await expect(run({ ...inputs, dims: 23 })).rejects.toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    await expect(run({ ...inputs, dims: 23 })).rejects.toThrow(/rows of 23 float32s \(dims from with.dims\)/);
    const gone = { uri: `artifact:sha256:${'1'.repeat(64)}`, sha256: '1'.repeat(64), bytes: 1 };
    await expect(run({ ...inputs, index: gone })).rejects.toMatchObject({ type: 'ArtifactMissing', nonRetryable: true });
    await expect(run({ ...inputs, kMin: 3, kMax: 2 })).rejects.toThrow(/kMax must be at least kMin/);
  });

  it('heartbeats progress in instances', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: Array<{ progress: { done: number; total: number; unit: string } }> = [];
    env.on('heartbeat', (d: unknown) => beats.push(d as (typeof beats)[number]));
    await run({ ...inputs }, 'beats', env);
    expect(beats.at(-1)!.progress).toEqual({ done: 9, total: 9, unit: 'instances' });
  });
});
