import { createHash } from 'node:crypto';
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
  new MockActivityEnvironment({ attempt: 1 }).run(acts['twin/source'], input(w, stageId)) as Promise<StageActivityResult>;

async function manifest(ref: ArtifactRef): Promise<ManifestRow[]> {
  return (await fs.readFile((await store.file(ref)), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ManifestRow);
}

describe('twin/source', () => {
  it('writes one instance per listing with its category and local images, in catalog order', async () => {
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), reviews: path.join(dir, 'reviews.jsonl'), categories: RULES });
    const rows = await manifest(result.outputs.instances as unknown as ArtifactRef);
    expect(rows.map((r) => [r.instance_id, r.category, r.supercategory])).toEqual([['A', 'sneaker', 'clothing'], ['B', 'mug', 'kitchen']]);
    expect(rows[0]!.images.map((i) => [path.basename(i.path!), i.role])).toEqual([['a1.jpg', 'listing'], ['a2.jpg', 'listing']]);
    expect(rows[1]!.images.map((i) => [path.basename(i.path!), i.role])).toEqual([['b1.jpg', 'listing'], ['r1.jpg', 'review']]);
    expect(rows[1]!.images[1]!.origin).toBe('img/r1.jpg');
  });

  it('counts every listing and image it leaves out, with examples, and never fails for them', async () => {
    const result = await run({ catalog: path.join(dir, 'meta_demo.jsonl'), categories: RULES }, 'counts');
    expect(result.outputs.counts).toMatchObject({
      listings: 6, instances: 2, images: 3, duplicateAsins: 1, malformedLines: 1, noAsin: 1,
      unmatched: 1, remoteImages: 1, missingImages: 1, outsideImages: 1, noImages: 1,
    });
    const report = JSON.parse(await fs.readFile((await store.file(result.outputs.report as unknown as ArtifactRef)), 'utf8'));
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

  it('records the sha256 of every image, so an image edited in place with its size and mtime kept changes the manifest', async () => {
    const folder = await catalogFolder('edit', { 'img/e1.jpg': 'first version', 'img/e2.jpg': 'other image' });
    const catalog = await writeCatalog(folder, [listing('E', 'Mug', 'Amazon Home', [{ large: 'img/e1.jpg' }, { large: 'img/e2.jpg' }])]);
    const before = await run({ catalog, categories: RULES }, 'edit-a');
    const rows = await manifest(before.outputs.instances as unknown as ArtifactRef);
    expect(rows[0]!.images.map((i) => i.source_sha256)).toEqual([sha256('first version'), sha256('other image')]);

    const file = path.join(folder, 'img', 'e1.jpg');
    const { mtime, atime } = await fs.stat(file);
    await fs.writeFile(file, 'FIRST VERSION');
    await fs.utimes(file, atime, mtime);
    const after = await run({ catalog, categories: RULES }, 'edit-b');
    expect((after.outputs.instances as unknown as ArtifactRef).sha256).not.toBe((before.outputs.instances as unknown as ArtifactRef).sha256);
    expect((await manifest(after.outputs.instances as unknown as ArtifactRef))[0]!.images[0]!.source_sha256).toBe(sha256('FIRST VERSION'));
  });

  it('refuses a symbolic link out of the images folder, to a file or through a linked folder, and keeps links that stay inside', async () => {
    const folder = await catalogFolder('links', { 'img/own.jpg': 'own' });
    const outside = path.join(home.root, 'outside-links');
    await fs.mkdir(outside, { recursive: true });
    await fs.writeFile(path.join(outside, 'x.jpg'), 'not part of the dataset');
    await fs.symlink(path.join(outside, 'x.jpg'), path.join(folder, 'img', 'file-link.jpg'));
    await fs.symlink(outside, path.join(folder, 'img', 'folder-link'));
    await fs.symlink(path.join(folder, 'img', 'own.jpg'), path.join(folder, 'img', 'inside-link.jpg'));
    const catalog = await writeCatalog(folder, [
      listing('L', 'Mug', 'Amazon Home', [{ large: 'img/file-link.jpg' }, { large: 'img/folder-link/x.jpg' }, { large: 'img/inside-link.jpg' }]),
    ]);
    const result = await run({ catalog, categories: RULES }, 'links');
    const rows = await manifest(result.outputs.instances as unknown as ArtifactRef);
    expect(rows[0]!.images.map((i) => [i.path, i.origin])).toEqual([[path.join(folder, 'img', 'own.jpg'), 'img/inside-link.jpg']]);
    expect(result.outputs.counts).toMatchObject({ outsideImages: 2, images: 1 });
    const report = JSON.parse(await fs.readFile((await store.file(result.outputs.report as unknown as ArtifactRef)), 'utf8'));
    expect(report.examples.outsideImages).toEqual([
      expect.stringMatching(/catalog\.jsonl:1 \(L\): img\/file-link\.jpg leads to .*outside-links\/x\.jpg, outside the images folder/),
      expect.stringMatching(/catalog\.jsonl:1 \(L\): img\/folder-link\/x\.jpg leads to .*outside-links\/x\.jpg, outside the images folder/),
    ]);
  });

  it('reports null lines, fields of the wrong kind and over-long lines as malformed with file:line, reads past a BOM, and keeps the good lines', async () => {
    const folder = await catalogFolder('malformed', { 'img/m.jpg': 'm', 'img/r.jpg': 'r' });
    const good = (asin: string) => listing(asin, 'Mug', 'Amazon Home', [{ large: 'img/m.jpg' }]);
    const catalog = await writeCatalog(folder, [
      `\uFEFF${good('FIRST')}`,
      'null',
      JSON.stringify({ parent_asin: 'OBJ', title: 'Mug', main_category: { name: 'Amazon Home', toString: 1 }, images: [] }),
      JSON.stringify({ parent_asin: 'IMGS', title: 'Mug', main_category: 'Amazon Home', images: 'img/m.jpg' }),
      JSON.stringify({ parent_asin: 'URL', title: 'Mug', main_category: 'Amazon Home', images: [{ large: 5 }] }),
      JSON.stringify({ parent_asin: 'HUGE', title: 'x'.repeat(10_000) }),
      good('LAST'),
    ]);
    const reviews = path.join(folder, 'reviews.jsonl');
    await fs.writeFile(reviews, ['null', JSON.stringify({ parent_asin: 'LAST', images: [{ large_image_url: { url: 'img/r.jpg' } }] }), JSON.stringify({ parent_asin: 'LAST', images: [{ large_image_url: 'img/r.jpg' }] })].join('\n'));
    const result = await withLineCap(4096, () => run({ catalog, reviews, categories: RULES }, 'malformed'));
    const rows = await manifest(result.outputs.instances as unknown as ArtifactRef);
    expect(rows.map((r) => [r.instance_id, r.images.length])).toEqual([['FIRST', 1], ['LAST', 2]]);
    expect(result.outputs.counts).toMatchObject({ listings: 2, instances: 2, malformedLines: 7 });
    const report = JSON.parse(await fs.readFile((await store.file(result.outputs.report as unknown as ArtifactRef)), 'utf8'));
    expect(report.examples.malformedLines).toEqual([
      `${reviews}:1: expected a JSON object, got null`,
      `${reviews}:2: field images.0.large_image_url: expected a string or null, got an object`,
      `${catalog}:2: expected a JSON object, got null`,
      `${catalog}:3: field main_category: expected a string or null, got an object`,
      `${catalog}:4: field images: expected a list of image objects or null, got a string`,
      `${catalog}:5: field images.0.large: expected a string or null, got a number`,
      expect.stringMatching(new RegExp(`^${catalog}:6: the line is 100\\d\\d bytes, longer than the 4096-byte limit`)),
    ]);
  });
});

async function catalogFolder(name: string, files: Record<string, string>): Promise<string> {
  const folder = path.join(home.root, name);
  for (const [rel, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(folder, rel)), { recursive: true });
    await fs.writeFile(path.join(folder, rel), text);
  }
  return folder;
}

async function writeCatalog(folder: string, lines: string[]): Promise<string> {
  const file = path.join(folder, 'catalog.jsonl');
  await fs.writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Runs `f` with data files capped at `bytes` per line (TWINFLOW_MAX_LINE_BYTES), as a worker set so would. */
async function withLineCap<T>(bytes: number, f: () => Promise<T>): Promise<T> {
  const before = process.env.TWINFLOW_MAX_LINE_BYTES;
  process.env.TWINFLOW_MAX_LINE_BYTES = String(bytes);
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.TWINFLOW_MAX_LINE_BYTES;
    else process.env.TWINFLOW_MAX_LINE_BYTES = before;
  }
}
