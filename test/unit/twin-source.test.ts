import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/index.js';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { computeStageKey } from '../../activities/cache-keys.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { ManifestRow } from '../../activities/data/manifest.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

let home: HomeLayout;
let dir: string;
let acts: ReturnType<typeof createActivities>;
let store: ArtifactStore;

const RULES: JsonObject[] = [
  { category: 'sneaker', supercategory: 'clothing', title: 'sneaker|running shoe' },
  { category: 'mug', supercategory: 'kitchen', main_category: ['Home & Kitchen', 'Amazon Home'] },
];

const listing = (asin: string | undefined, title: string, main: string, images: Array<Record<string, string | null>>) =>
  JSON.stringify({ parent_asin: asin, title, main_category: main, images, average_rating: 4.5 });

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-source-')));
  acts = createActivities({ home });
  store = new ArtifactStore(home.artifactsDir);
  dir = path.join(home.root, 'catalog');
  await fs.mkdir(path.join(dir, 'img'), { recursive: true });
  for (const f of ['a1.jpg', 'a2.jpg', 'b1.jpg', 'r1.jpg', 'c1.jpg']) await fs.writeFile(path.join(dir, 'img', f), f);
  await fs.writeFile(path.join(home.root, 'secret.jpg'), 'outside');
  await fs.writeFile(path.join(dir, 'meta_demo.jsonl'), [
    listing('A', 'Blue running shoe, size 42', 'Fashion', [{ hi_res: 'img/a1.jpg', large: 'img/a1-small.jpg' }, { hi_res: null, large: 'img/a2.jpg' }]),
    listing('B', 'Stoneware mug', 'Amazon Home', [{ large: 'img/b1.jpg' }, { large: 'https://m.media-amazon.com/images/I/x.jpg' }]),
    listing('A', 'Same ASIN again', 'Fashion', [{ large: 'img/a1.jpg' }]),
    '{"parent_asin": "BROKEN", "title": ',
    listing(undefined, 'No ASIN', 'Fashion', [{ large: 'img/a1.jpg' }]),
    listing('C', 'Garden hose', 'Tools', [{ large: 'img/c1.jpg' }]),
    listing('D', 'Sneaker with no photos', 'Fashion', [{ large: 'img/missing.jpg' }, { large: '../secret.jpg' }]),
    '',
  ].join('\n'));
  await fs.writeFile(path.join(dir, 'reviews.jsonl'), `${JSON.stringify({ parent_asin: 'B', images: [{ large_image_url: 'img/r1.jpg' }] })}\n`);
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function input(w: JsonObject, stageId = 'source'): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'twin/source', kindVersion: '1', with: w, shellEnv: {} };
}
const run = (w: JsonObject, stageId?: string) =>
  new MockActivityEnvironment({ attempt: 1 }).run(acts.readCatalog, input(w, stageId)) as Promise<StageActivityResult>;

async function manifest(ref: ArtifactRef): Promise<ManifestRow[]> {
  return (await fs.readFile(store.resolve(ref), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ManifestRow);
}

describe('twin/source', () => {
  it('writes one instance per listing with its category and local images, in catalog order', async () => {
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), reviews: path.join(dir, 'reviews.jsonl'), categories: RULES });
    const rows = await manifest(result.outputs.instances as unknown as ArtifactRef);
    expect(rows.map((r) => [r.instance_id, r.category, r.supercategory])).toEqual([['A', 'sneaker', 'clothing'], ['B', 'mug', 'kitchen']]);
    expect(rows[0]!.images.map((i) => [path.basename(i.path), i.role])).toEqual([['a1.jpg', 'listing'], ['a2.jpg', 'listing']]);
    expect(rows[1]!.images.map((i) => [path.basename(i.path), i.role])).toEqual([['b1.jpg', 'listing'], ['r1.jpg', 'review']]);
    expect(rows[1]!.images[1]!.origin).toBe('img/r1.jpg');
  });

  it('counts every listing and image it leaves out, with examples, and never fails for them', async () => {
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), categories: RULES }, 'counts');
    expect(result.outputs.counts).toMatchObject({
      listings: 6, instances: 2, images: 3, duplicateAsins: 1, malformedLines: 1, noAsin: 1,
      unmatched: 1, remoteImages: 1, missingImages: 1, outsideImages: 1, noImages: 1,
    });
    const report = JSON.parse(await fs.readFile(store.resolve(result.outputs.report as unknown as ArtifactRef), 'utf8'));
    expect(report.examples.malformedLines[0]).toMatch(/meta_demo\.jsonl:4: /);
    expect(report.examples.outsideImages[0]).toContain('../secret.jpg');
    expect(report.instancesByCategory).toEqual({ mug: 1, sneaker: 1 });
  });

  it('keeps unmatched listings as "other" when asked', async () => {
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), categories: RULES, unmatched: 'keep' }, 'keep');
    const rows = await manifest(result.outputs.instances as unknown as ArtifactRef);
    expect(rows.find((r) => r.instance_id === 'C')?.category).toBe('other');
  });

  it('reads the category table from a YAML file and rejects a bad one without retrying', async () => {
    const table = path.join(dir, 'categories.yaml');
    await fs.writeFile(table, '- { category: mug, main_category: Amazon Home }\n');
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), categories: table }, 'yaml');
    expect((await manifest(result.outputs.instances as unknown as ArtifactRef)).map((r) => r.instance_id)).toEqual(['B']);
    await fs.writeFile(table, '- { category: bad, title: "([" }\n');
    const err = (await run({ catalog: path.join(dir, 'meta_demo.jsonl'), categories: table }, 'bad').then(
      () => ({}),
      (e: unknown) => e,
    )) as { type: string; nonRetryable: boolean; message: string };
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(err.message).toMatch(/bad title pattern/);
  });

  it('says which file is missing', async () => {
    const err = (await run({ catalog: path.join(dir, 'nope.jsonl'), categories: RULES }, 'missing').then(() => ({}), (e: unknown) => e)) as Error;
    expect(err.message).toMatch(/catalog file .*nope\.jsonl does not exist/);
  });

  it('writes the same bytes for the same catalog', async () => {
    const w = { catalog: path.join(dir, 'meta_demo.jsonl'), reviews: path.join(dir, 'reviews.jsonl'), categories: RULES };
    const [a, b] = [await run(w, 'det-a'), await run(w, 'det-b')];
    expect((a.outputs.instances as unknown as ArtifactRef).sha256).toBe((b.outputs.instances as unknown as ArtifactRef).sha256);
  });

  it('changes its cache key when the catalog or an image changes', async () => {
    const w = { catalog: path.join(dir, 'meta_demo.jsonl'), categories: RULES } as unknown as JsonObject;
    const key = () => computeStageKey({ uses: 'twin/source', kindVersion: '1', inputs: w, shellEnv: {} });
    const before = await key();
    expect(await key()).toBe(before);
    await fs.appendFile(path.join(dir, 'meta_demo.jsonl'), `${listing('E', 'Mug', 'Amazon Home', [{ large: 'img/b1.jpg' }])}\n`);
    const afterCatalog = await key();
    expect(afterCatalog).not.toBe(before);
    await fs.writeFile(path.join(dir, 'img', 'new.jpg'), 'x');
    expect(await key()).not.toBe(afterCatalog);
  });
});
