/*
 * Scenarios (twin/assemble on a tiny real input: images drawn with sharp and stored
 * through the ArtifactStore, manifests and decisions written as JSONL):
 * - Rows per split and kind equal the closed forms of countQueries for that split's
 *   instances and its within-split hard pairs; every query appears once.
 * - Twin and Twin-Eval share no instance and no image; hard pairs that cross the split
 *   are dropped and counted.
 * - Decisions: rejected and undecided hard pairs and rejected generated images never show;
 *   (A,B) and (B,A) make one pair; only used images are copied, once each.
 * - A target (and evalTarget) is hit exactly with the kinds' proportions.
 * - Balance: yes = no, and every shard of shardRows rows is balanced.
 * - The same inputs and seed give byte-identical files; another seed gives other files.
 * - Exports: parallel meta lines, the rows again as parquet, sharegpt and dataset_info.json,
 *   stats.json, the SVG and the dataset card, whose configs all name parquet files that were
 *   written; both parquet files hold image bytes in either image mode; embed mode needs no
 *   folder when only verl is asked for.
 * - An image two instances share is used once; a pair is read from an item id when
 *   its metadata is missing.
 * - Bad inputs fail without retries and say what to do; progress is heartbeated in rows
 *   and cancelling stops the stage without leaving a dataset behind.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { readParquetBatches } from '../../activities/data/parquet-read.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { countQueries, proportionalQuotas, splitInstances, type AssemblyInstance } from '../../activities/twin/pairs.js';
import type { JsonObject } from '../../engine/types.js';
import { buildTwinFixture, runAssemble, type Fixture } from '../python/twin-fixture.js';
import { failure } from '../support/activity-results.js';

interface Row { question: string; answer: string; image_1: string; image_2: string }
interface Meta { index: number; pair_id: string; kind: string; category: string; instance_1: string; instance_2: string }

let home: HomeLayout;
let fx: Fixture;
const REAL = [4, 3, 5, 2, 3, 4, 1, 3, 4, 2, 5, 3];
/** The accepted hard pairs of the fixture, as instance positions, (0,2) and (2,0) once. */
const ACCEPTED: Array<[number, number]> = [[0, 2], [1, 3], [4, 5], [8, 9], [0, 9], [10, 11], [5, 10], [7, 8]];

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-assemble-')));
  fx = await buildTwinFixture(home, {
    real: REAL,
    generated: [2, 1, 0, 2, 1, 1, 0, 1, 2, 1, 1, 2],
    rejectGenerated: [1, 4, 9],
    hard: [
      { a: 0, b: 2 }, { a: 2, b: 0 }, { a: 1, b: 3 }, { a: 4, b: 5 }, { a: 6, b: 7, accept: false }, { a: 8, b: 9 },
      { a: 0, b: 9 }, { a: 10, b: 11 }, { a: 3, b: 11, undecided: true }, { a: 5, b: 10 }, { a: 7, b: 8 },
    ],
  });
}, 60_000);
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

let outs = 0;
const run = (extra: JsonObject = {}, env?: MockActivityEnvironment) =>
  runAssemble(home, { ...fx.with, evalInstances: 3, out: path.join(home.root, `out-${outs++}`), ...extra }, env, `assemble-${outs}`);

const lines = async <T>(file: string): Promise<T[]> =>
  (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

async function split(dir: string, name: 'train' | 'eval') {
  return { rows: await lines<Row>(path.join(dir, `${name}.jsonl`)), meta: await lines<Meta>(path.join(dir, `${name}.meta.jsonl`)) };
}


const sha = (p: string) => path.basename(p).split('.')[0]!;

/** Every row of a parquet file as plain objects (nested structs and lists as Arrow rows and vectors). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function parquetRows(file: string): Promise<any[]> {
  const rows = [];
  for await (const table of readParquetBatches(file)) rows.push(...table.toArray());
  return rows;
}

describe('twin/assemble', () => {
  it('writes exactly the closed-form count of queries per split and kind, each once', async () => {
    const out = await run();
    const stats = JSON.parse(await fs.readFile(path.join(out.dataset, 'stats.json'), 'utf8'));
    const sides = splitInstances(fx.ids, 3, 0);
    for (const name of ['train', 'eval'] as const) {
      const { rows, meta } = await split(out.dataset, name);
      const instances = new Map<string, AssemblyInstance>();
      fx.ids.forEach((id, i) => {
        if (!sides[name].has(id)) return;
        const generated = fx.generatedSha.filter((g) => g.instance === i && g.accepted).map((g) => g.sha256);
        instances.set(id, { id, category: '', real: fx.realSha[i]!, generated });
      });
      const accepted: Array<[string, string]> = ACCEPTED
        .map(([a, b]) => [fx.ids[a]!, fx.ids[b]!] as [string, string]).filter(([a, b]) => instances.has(a) && instances.has(b));
      const expected = countQueries(instances, accepted);
      expect(out.counts[name]).toEqual({ ...expected, total: expected.positive + expected['hard-negative'] + expected['generated-negative'] });
      expect(stats.available[name]).toEqual(out.counts[name]);
      expect(rows).toHaveLength(out.counts[name].total);
      expect(new Set(meta.map((m) => m.pair_id)).size).toBe(rows.length);
      expect(meta.map((m) => m.index)).toEqual(rows.map((_, i) => i));
    }
  });

  it('keeps Twin and Twin-Eval apart by instance and image, dropping hard pairs that cross', async () => {
    const out = await run({ seed: 4 });
    const train = await split(out.dataset, 'train');
    const evalSplit = await split(out.dataset, 'eval');
    const instancesOf = (s: { meta: Meta[] }) => new Set(s.meta.flatMap((m) => [m.instance_1, m.instance_2]));
    const imagesOf = (s: { rows: Row[] }) => new Set(s.rows.flatMap((r) => [r.image_1, r.image_2]));
    expect([...instancesOf(train)].filter((id) => instancesOf(evalSplit).has(id))).toEqual([]);
    expect([...imagesOf(train)].filter((p) => imagesOf(evalSplit).has(p))).toEqual([]);
    expect(instancesOf(evalSplit).size).toBeLessThanOrEqual(3);
    const stats = JSON.parse(await fs.readFile(path.join(out.dataset, 'stats.json'), 'utf8'));
    const side = (id: string) => (instancesOf(evalSplit).has(id) ? 'eval' : 'train');
    const crossing = ACCEPTED.filter(([a, b]) => side(fx.ids[a]!) !== side(fx.ids[b]!));
    expect(stats.hardNegatives.crossSplitDropped.pairs).toBe(crossing.length);
    expect(stats.hardNegatives).toMatchObject({ items: 11, accepted: 9, rejected: 1, undecided: 1, pairs: 8, repeatedPairs: 1 });
  });

  it('leaves out rejected and undecided hard pairs and rejected generated images', async () => {
    const out = await run({ evalInstances: 0 });
    const { rows, meta } = await split(out.dataset, 'train');
    const pairs = new Set(meta.filter((m) => m.kind === 'hard-negative').map((m) => [m.instance_1, m.instance_2].sort().join('|')));
    for (const [a, b] of fx.rejectedHard) expect(pairs.has([a, b].sort().join('|'))).toBe(false);
    expect(pairs.size).toBe(8);
    const shown = new Set(rows.flatMap((r) => [sha(r.image_1), sha(r.image_2)]));
    for (const g of fx.generatedSha) expect(shown.has(g.sha256)).toBe(g.accepted);
    const copied = (await fs.readdir(path.join(out.dataset, 'images'))).map(sha).sort();
    expect(copied).toEqual([...shown].sort());
    const stats = JSON.parse(await fs.readFile(path.join(out.dataset, 'stats.json'), 'utf8'));
    expect(stats.generated).toEqual({ items: 14, accepted: 11, rejected: 3, undecided: 0 });
    expect(stats.images.all.generated).toBe(11);
  });

  it('hits a target exactly with the kinds\' proportions, in both splits', async () => {
    const full = await run({ seed: 2 });
    const out = await run({ seed: 2, target: 40, evalTarget: 9 });
    for (const [name, target] of [['train', 40], ['eval', 9]] as const) {
      const { positive, 'hard-negative': hard, 'generated-negative': gen } = full.counts[name];
      expect(out.counts[name]).toEqual({ ...proportionalQuotas({ positive, 'hard-negative': hard, 'generated-negative': gen }, target), total: target });
      const { meta } = await split(out.dataset, name);
      expect(meta).toHaveLength(target);
      expect(new Set(meta.map((m) => m.pair_id)).size).toBe(target);
    }
  });

  it('balances yes against no in every shard of shardRows rows', async () => {
    const out = await run({ seed: 3, balance: true, shardRows: 6, evalInstances: 2 });
    for (const name of ['train', 'eval'] as const) {
      const { rows } = await split(out.dataset, name);
      expect(out.counts[name].positive * 2).toBe(out.counts[name].total);
      for (let start = 0; start < rows.length; start += 6) {
        const shard = rows.slice(start, start + 6);
        expect(shard.filter((r) => r.answer === 'yes').length * 2).toBe(shard.length);
      }
    }
  });

  it('writes byte-identical files for the same inputs and seed, and other files for another seed', async () => {
    const digests = async (dir: string) => {
      const names = (await fs.readdir(dir, { recursive: true })).filter((n) => !n.startsWith('images')).sort();
      const entries = await Promise.all(names.map(async (n) => [n, createHash('sha256').update(await fs.readFile(path.join(dir, n))).digest('hex')]));
      return Object.fromEntries(entries) as Record<string, string>;
    };
    const a = await run({ seed: 9 });
    const b = await run({ seed: 9 });
    const c = await run({ seed: 10 });
    expect(await digests(a.dataset)).toEqual(await digests(b.dataset));
    expect(Object.fromEntries(Object.entries(a.files).map(([k, v]) => [k, v.sha256]))).toEqual(Object.fromEntries(Object.entries(b.files).map(([k, v]) => [k, v.sha256])));
    const [da, dc] = [await digests(a.dataset), await digests(c.dataset)];
    for (const name of ['train.jsonl', 'train.parquet', 'train.rows.parquet', 'train.sharegpt.json', 'eval.jsonl']) expect(dc[name]).not.toBe(da[name]);
  });

  it('writes sharegpt with dataset_info.json, the stats, the figure and a dataset card', async () => {
    const out = await run();
    const sharegpt = JSON.parse(await fs.readFile(path.join(out.dataset, 'train.sharegpt.json'), 'utf8'));
    const { rows } = await split(out.dataset, 'train');
    expect(sharegpt).toHaveLength(rows.length);
    expect(sharegpt[0]).toEqual({
      messages: [{ role: 'user', content: `<image><image>${rows[0]!.question}` }, { role: 'assistant', content: `<answer>${rows[0]!.answer}</answer>` }],
      images: [rows[0]!.image_1, rows[0]!.image_2],
    });
    const info = JSON.parse(await fs.readFile(path.join(out.dataset, 'dataset_info.json'), 'utf8'));
    expect(info.twin).toMatchObject({ file_name: 'train.sharegpt.json', formatting: 'sharegpt', columns: { messages: 'messages', images: 'images' } });
    expect(await fs.readFile(path.join(out.dataset, 'queries-per-instance.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    expect(await fs.readFile(path.join(out.dataset, 'README.md'), 'utf8')).toMatch(/teacher model's explanations/);
    expect(Object.keys(out.files).sort()).toEqual([
      'README.md', 'dataset_info.json', 'eval.jsonl', 'eval.meta.jsonl', 'eval.parquet', 'eval.rows.parquet', 'eval.sharegpt.json',
      'queries-per-instance.svg', 'stats.json', 'train.jsonl', 'train.meta.jsonl', 'train.parquet', 'train.rows.parquet', 'train.sharegpt.json',
    ]);
    const stats = JSON.parse(await fs.readFile(path.join(out.dataset, 'stats.json'), 'utf8'));
    expect(stats.imagesPerInstance).toEqual({ 1: 1, 2: 2, 3: 4, 4: 3, 5: 2 });
  });

  it('embeds image bytes in the parquet and writes no images folder when only verl is asked for', async () => {
    const out = await run({ images: 'embed', exports: ['verl'] });
    expect(Object.keys(out.files).sort()).toEqual(['README.md', 'eval.parquet', 'queries-per-instance.svg', 'stats.json', 'train.parquet']);
    await expect(fs.access(path.join(out.dataset, 'images'))).rejects.toThrow();
    const parquet = await fs.readFile(path.join(out.dataset, 'train.parquet'));
    expect(parquet.subarray(0, 4).toString()).toBe('PAR1');
    expect(parquet.includes(Buffer.from([0x89, 0x50, 0x4e, 0x47]))).toBe(true); // a PNG inside
  });

  it('puts the bytes of every image a row shows into both parquet files in folder mode too', async () => {
    const out = await run();
    const { rows } = await split(out.dataset, 'train');
    const file = (p: string) => fs.readFile(path.join(out.dataset, p));
    const verl = await parquetRows(path.join(out.dataset, 'train.parquet'));
    const twin = await parquetRows(path.join(out.dataset, 'train.rows.parquet'));
    expect(verl).toHaveLength(rows.length);
    expect(twin).toHaveLength(rows.length);
    for (const [k, row] of rows.entries()) {
      const images = [...verl[k]!.images] as Array<{ bytes: Uint8Array; path: string }>;
      expect(images.map((i) => i.path)).toEqual([row.image_1, row.image_2]);
      expect(Buffer.from(images[1]!.bytes).equals(await file(row.image_2))).toBe(true);
      expect(twin[k]!.question).toBe(row.question);
      expect(twin[k]!.image_1.path).toBe(row.image_1);
      expect(Buffer.from(twin[k]!.image_1.bytes).equals(await file(row.image_1))).toBe(true);
    }
  });

  it('lists only parquet configs in the dataset card, each naming files that were written', async () => {
    const out = await run();
    const card = await fs.readFile(path.join(out.dataset, 'README.md'), 'utf8');
    const header = card.split('---\n')[1]!;
    expect([...header.matchAll(/config_name: (\S+)/g)].map((m) => m[1])).toEqual(['default', 'verl']);
    const paths = [...header.matchAll(/path: (\S+)/g)].map((m) => m[1]!);
    expect(paths).toEqual(['train.rows.parquet', 'eval.rows.parquet', 'train.parquet', 'eval.parquet']);
    for (const p of paths) expect(out.files[p]).toBeDefined();
  });
});

describe('twin/assemble on hand-written manifests', () => {
  it('uses an image two instances share once, for the first, and reads a pair from an item id alone', async () => {
    const { ArtifactStore } = await import('../../activities/artifact-store.js');
    const store = new ArtifactStore(home.artifactsDir);
    const [s0, s1, s2] = fx.realSha[0]! as [string, string, string];
    const [s3, s4] = fx.realSha[1]! as [string, string];
    const image = (sha256: string) => ({ role: 'listing', sha256 });
    const jsonl = (rows: unknown[]) => store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const instances = await jsonl([
      { instance_id: 'A', asins: ['A'], title: 'a', category: 'mug', images: [s0, s1, s2].map(image) },
      { instance_id: 'B', asins: ['B'], title: 'b', category: 'mug', images: [s0, s3, s4].map(image) },
    ]);
    const items = await jsonl([{ id: 'hn:B|A', images: [] }]);
    const decisions = await jsonl([{ id: 'hn:B|A', choice: 'accept', by: 'p', at: 't', automatic: false }]);
    const out = await runAssemble(home, {
      instances: { ...instances }, hardNegatives: { ...items }, hardDecisions: { ...decisions }, evalInstances: 0, out: path.join(home.root, 'shared'),
    });
    expect(out.counts.train).toEqual({ positive: 3 + 1, 'hard-negative': 3 * 2, 'generated-negative': 0, total: 10 });
    const stats = JSON.parse(await fs.readFile(path.join(out.dataset, 'stats.json'), 'utf8'));
    expect(stats.images.duplicatesDropped).toBe(1);
    expect(stats.images.all.real).toBe(5);
  });
});

describe('twin/assemble refuses bad inputs', () => {
  const message = async (extra: JsonObject) => {
    const err = await failure(run(extra));
    expect(err.nonRetryable ?? err.cause?.nonRetryable).toBe(true);
    return String(err.message);
  };

  it('asks for a review or decide stage when hard negatives come without decisions', async () => {
    expect(await message({ hardDecisions: undefined } as unknown as JsonObject)).toMatch(/hardDecisions is not.*add a core\/review or core\/decide stage/);
    expect(await message({ generatedDecisions: undefined } as unknown as JsonObject)).toMatch(/generatedDecisions is not/);
  });

  it('names the problem with templates, evalInstances and the out folder', async () => {
    expect(await message({ templates: ['Same {category}?'] })).toMatch(/with.templates: template 0: must ask for <answer>yes<\/answer>/);
    expect(await message({ templates: ['Same {colour}? <answer>yes</answer> or <answer>no</answer>'] })).toMatch(/unknown placeholder \{colour\}/);
    expect(await message({ evalInstances: 99 })).toMatch(/evalInstances is 99 but with.instances has only 12/);
    const foreign = path.join(home.root, 'foreign');
    await fs.mkdir(foreign, { recursive: true });
    await fs.writeFile(path.join(foreign, 'notes.txt'), 'mine');
    expect(await message({ out: foreign })).toMatch(/already holds files that twin\/assemble did not write/);
    expect(await fs.readFile(path.join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('refuses a manifest without digests, pointing at images/prepare', async () => {
    const { ArtifactStore } = await import('../../activities/artifact-store.js');
    const store = new ArtifactStore(home.artifactsDir);
    const raw = await store.putBytes(`${JSON.stringify({ instance_id: 'x', asins: ['x'], title: 't', category: 'c', images: [{ path: '/a.jpg', role: 'listing' }] })}\n`);
    expect(await message({ instances: { ...raw } })).toMatch(/without sha256.*run images\/prepare first/);
  });
});

describe('twin/assemble progress', () => {
  it('heartbeats progress in rows', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: Array<{ progress: { done: number; total: number; unit: string } }> = [];
    env.on('heartbeat', (d: unknown) => beats.push(d as (typeof beats)[number]));
    const out = await run({}, env);
    const last = beats.at(-1)!.progress;
    expect(last).toEqual({ done: out.counts.train.total + out.counts.eval.total, total: out.counts.train.total + out.counts.eval.total, unit: 'rows' });
  });

  it('stops when cancelled and leaves no dataset folder', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.once('heartbeat', () => env.cancel());
    const dir = path.join(home.root, `out-${outs}`);
    const err = await failure(run({}, env));
    expect(err).toBeInstanceOf(CancelledFailure);
    await expect(fs.access(dir)).rejects.toThrow();
    await expect(fs.access(`${dir}.partial`)).rejects.toThrow();
  });
});
