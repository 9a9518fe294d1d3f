/*
 * Scenarios (twin/synthesize-variants on product photos drawn in code):
 * - Three instances with real photos and perInstance 3 give nine generated JPEGs; an
 *   instance with only a generated image and one with no images are skipped and counted.
 * - The generated manifest has the instance rows with only generated images, each with an
 *   edit record whose source is one of the instance's real images.
 * - Every generated image differs from its source, but modestly: most pixels are unchanged
 *   and the clearly changed ones lie inside the recorded region.
 * - Recolor, patch and shape edits are all produced, with every patch mode (fill, copy,
 *   mark) and shape mode (stretch, mirror); `edits` restricts them.
 * - Review items are `gen:<sha256>` of stored files, grouped by instance, source first.
 * - The same inputs and seed give byte-identical artifacts (twice); another seed gives other
 *   images; reversing the manifest and each row's images changes nothing per instance.
 * - Variants whose edit changes nothing (a blank photo) are dropped and counted.
 * - maxInstances and perInstance 0 limit the work; heartbeats count images; cancelling stops.
 * - The schema rejects perInstance -1 and unknown edits; an unprepared manifest is refused.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { REVIEW_ITEMS_MEDIA_TYPE, type ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { createSynthesizeVariants, type GeneratedImage } from '../../activities/twin/synthesize.js';
import { decodeRgb, type Raster, type Region } from '../../activities/twin/synth/raster.js';
import { synthesizeInputs } from '../../engine/kinds/synthesize.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';

interface Outputs {
  generated: ArtifactRef;
  items: ArtifactRef;
  counts: { instances: number; generated: number; skipped: number; dropped: number };
}
type GeneratedRow = Omit<ManifestRow, 'images'> & { images: GeneratedImage[] };

let home: HomeLayout;
let store: ArtifactStore;
let synthesize: ReturnType<typeof createSynthesizeVariants>;
let rows: ManifestRow[];
let manifest: ArtifactRef;

/**
 * A 320x240 product shot: an object on a white table, a band in a second colour and a
 * small dark label, offset by `shift` pixels so two shots of one product differ; a
 * `weave` gives the object a fine striped texture.
 */
function productShot(body: number[], band: number[], shift: number, weave = false): Buffer {
  const [w, h] = [320, 240];
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [cx, cy] = [160 + shift, 125 + shift / 2];
      const inBody = Math.abs(x - cx) < 70 && Math.abs(y - cy) < 80;
      const inBand = inBody && Math.abs(y - cy + 20) < 12;
      const inLabel = inBody && Math.abs(x - cx - 20) < 18 && Math.abs(y - cy - 30) < 14;
      const shade = inBody ? 0.75 + 0.25 * Math.cos((x - cx) / 45) - (weave && (x + y) % 4 < 2 ? 0.15 : 0) : 1;
      const color = inLabel ? [30, 30, 40] : inBand ? band : inBody ? body : [246, 246, 244];
      const i = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) px[i + c] = Math.round(color[c]! * shade);
    }
  }
  return px;
}

async function storeShot(body: number[], band: number[], shift: number, role: ManifestImage['role'], weave = false): Promise<ManifestImage> {
  const jpeg = await sharp(productShot(body, band, shift, weave), { raw: { width: 320, height: 240, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const ref = await store.putBytes(jpeg);
  return { role, sha256: ref.sha256, width: 320, height: 240 };
}

function row(id: string, images: ManifestImage[]): ManifestRow {
  return { instance_id: id, asins: [id], title: `Product ${id}`, category: 'mug', supercategory: 'kitchen', images };
}

async function manifestOf(list: ManifestRow[]): Promise<ArtifactRef> {
  return store.putBytes(list.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
}

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-synth-')));
  store = new ArtifactStore(home.artifactsDir);
  synthesize = createSynthesizeVariants({ store, home });
  rows = [
    row('mug-red', [await storeShot([200, 40, 40], [40, 70, 190], 0, 'listing'), await storeShot([200, 40, 40], [40, 70, 190], 14, 'review')]),
    row('only-generated', [await storeShot([90, 160, 60], [240, 200, 40], 0, 'generated')]),
    row('bottle-green', [await storeShot([50, 150, 70], [240, 200, 40], -10, 'listing', true)]),
    row('no-images', []),
    row('vase-grey', [await storeShot([150, 150, 150], [90, 90, 90], 6, 'listing'), await storeShot([150, 150, 150], [90, 90, 90], -6, 'review')]),
  ];
  manifest = await manifestOf(rows);
}, 60_000);
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function input(extra: JsonObject = {}, stageId = 'synth', instances: ArtifactRef = manifest): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'twin/synthesize-variants', kindVersion: '1', with: { instances: { ...instances }, ...extra }, shellEnv: {} };
}

async function run(i: StageActivityInput, env = new MockActivityEnvironment({ attempt: 1 })): Promise<Outputs> {
  const result = (await env.run(synthesize, i)) as StageActivityResult;
  return result.outputs as unknown as Outputs;
}


const rowsOf = <T>(ref: ArtifactRef) => jsonlRows<T>(store, ref);

function inside(region: Region, x: number, y: number, margin = 0): boolean {
  return x >= region.left - margin && y >= region.top - margin && x < region.left + region.width + margin && y < region.top + region.height + margin;
}

/** How an edited image differs from its source, pixel by pixel (largest channel difference). */
function compare(source: Raster, edited: Raster, region: Region) {
  let sum = 0;
  let unchanged = 0;
  let changed = 0;
  let changedInside = 0;
  for (let y = 0; y < source.height; y++) {
    for (let x = 0; x < source.width; x++) {
      const i = (y * source.width + x) * 3;
      let worst = 0;
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(source.data[i + c]! - edited.data[i + c]!);
        sum += d;
        worst = Math.max(worst, d);
      }
      if (worst <= 8) unchanged++;
      if (worst > 24) {
        changed++;
        if (inside(region, x, y)) changedInside++;
      }
    }
  }
  const pixels = source.width * source.height;
  return { meanDiff: sum / (pixels * 3), unchanged: unchanged / pixels, changed, insideShare: changed ? changedInside / changed : 1 };
}

/**
 * The image differs from its source, but most pixels are within JPEG noise of it and the
 * clearly changed ones lie inside the recorded region.
 */
async function expectModestChange(image: GeneratedImage): Promise<void> {
  const source = rows.flatMap((r) => r.images).find((i) => i.sha256 === image.edit.source)!;
  const diff = compare(await decodeRgb(await store.file(source.sha256!)), await decodeRgb(await store.file(image.sha256)), image.edit.region);
  const label = `${image.edit.type} ${JSON.stringify(image.edit.params)}`;
  expect(diff.meanDiff, label).toBeGreaterThan(0.1);
  expect(diff.unchanged, label).toBeGreaterThan(0.7);
  expect(diff.changed, label).toBeGreaterThan(50);
  expect(diff.insideShare, label).toBeGreaterThan(0.95);
}

describe('twin/synthesize-variants', () => {
  let out: Outputs;
  let generated: GeneratedRow[];
  let items: ReviewItem[];
  const beats: unknown[] = [];

  beforeAll(async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const started = performance.now();
    out = await run(input({ perInstance: 3 }), env);
    const seconds = (performance.now() - started) / 1000;
    console.log(`twin/synthesize-variants: ${out.counts.generated} images (320x240) in ${seconds.toFixed(2)} s (${(out.counts.generated / seconds).toFixed(1)} images/s)`);
    generated = await rowsOf<GeneratedRow>(out.generated);
    items = await rowsOf<ReviewItem>(out.items);
  }, 60_000);

  it('generates perInstance images for each instance with real photos and skips the others', () => {
    expect(out.counts).toEqual({ instances: 3, generated: 9, skipped: 2, dropped: 0 });
    expect(generated.map((r) => r.instance_id)).toEqual(['mug-red', 'bottle-green', 'vase-grey']);
    expect(generated.map((r) => r.images.length)).toEqual([3, 3, 3]);
    expect(out.generated).toMatchObject({ mediaType: MANIFEST_MEDIA_TYPE, counts: { instances: 3, images: 9 } });
    expect(out.items).toMatchObject({ mediaType: REVIEW_ITEMS_MEDIA_TYPE, counts: { items: 9 } });
  });

  it('writes instance rows with only generated images, each tagged with its edit and real source', async () => {
    for (const gen of generated) {
      const real = rows.find((r) => r.instance_id === gen.instance_id)!;
      expect(gen).toMatchObject({ asins: real.asins, title: real.title, category: real.category, supercategory: real.supercategory });
      const realDigests = real.images.filter((i) => i.role !== 'generated').map((i) => i.sha256);
      for (const image of gen.images) {
        expect(image).toMatchObject({ role: 'generated', origin: 'synthesize-variants', width: 320, height: 240 });
        expect(realDigests).toContain(image.edit.source);
        expect(Object.keys(image.edit).sort()).toEqual(['params', 'region', 'source', 'type']);
        expect(image.path).toBeUndefined();
        const bytes = await fs.readFile(await store.file(image.sha256));
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(image.sha256);
        expect((await sharp(bytes).metadata()).format).toBe('jpeg');
      }
    }
  });

  it('changes every image modestly, inside the recorded region', async () => {
    for (const image of generated.flatMap((r) => r.images)) await expectModestChange(image);
  });

  it('produces recolor, patch and shape edits, and only those asked for', async () => {
    expect(new Set(generated.flatMap((r) => r.images.map((i) => i.edit.type)))).toEqual(new Set(['recolor', 'patch', 'shape']));
    // Three edits cycled over three variants: each instance gets one of each.
    for (const gen of generated) expect(gen.images.map((i) => i.edit.type).sort()).toEqual(['patch', 'recolor', 'shape']);
    const only = await run(input({ perInstance: 2, edits: ['shape'] }, 'synth-shape'));
    const types = (await rowsOf<GeneratedRow>(only.generated)).flatMap((r) => r.images.map((i) => i.edit.type));
    expect(types).toEqual(Array(6).fill('shape'));
  }, 60_000);

  it('uses every kind of patch and shape change over enough variants', async () => {
    const many = await run(input({ perInstance: 12, edits: ['patch', 'shape'] }, 'synth-many'));
    const edits = (await rowsOf<GeneratedRow>(many.generated)).flatMap((r) => r.images.map((i) => i.edit));
    const modes = (type: string) => new Set(edits.filter((e) => e.type === type).map((e) => e.params.mode));
    expect(modes('patch')).toEqual(new Set(['fill', 'copy', 'mark']));
    expect(modes('shape')).toEqual(new Set(['stretch', 'mirror']));
    for (const image of (await rowsOf<GeneratedRow>(many.generated)).flatMap((r) => r.images)) await expectModestChange(image);
  }, 60_000);

  it('offers each generated image for review as gen:<sha256> of a stored file', async () => {
    const images = generated.flatMap((r) => r.images.map((image) => ({ image, row: r })));
    expect(items.map((i) => i.id)).toEqual(images.map(({ image }) => `gen:${image.sha256}`));
    for (const [k, item] of items.entries()) {
      const { image, row: gen } = images[k]!;
      expect(await store.has(item.id.slice('gen:'.length))).toBe(true);
      expect(item.group).toBe(gen.instance_id);
      expect(item.images.map((i) => [i.sha256, i.instance_id])).toEqual([[image.edit.source, gen.instance_id], [image.sha256, gen.instance_id]]);
      expect(item.images[1]!.role).toBe('generated');
      expect(item.question).toMatch(/different instance/);
      expect(item.metadata).toEqual({ instance_id: gen.instance_id, title: gen.title, category: gen.category, edit: image.edit });
    }
  });

  it('gives byte-identical artifacts for the same inputs and seed', async () => {
    for (const stageId of ['synth-again', 'synth-third']) {
      const again = await run(input({ perInstance: 3 }, stageId));
      expect(again.generated.sha256).toBe(out.generated.sha256);
      expect(again.items.sha256).toBe(out.items.sha256);
    }
  }, 60_000);

  it('gives other images for another seed', async () => {
    const other = await run(input({ perInstance: 3, seed: 7 }, 'synth-seed'));
    const digests = (await rowsOf<GeneratedRow>(other.generated)).flatMap((r) => r.images.map((i) => i.sha256));
    const ours = new Set(generated.flatMap((r) => r.images.map((i) => i.sha256)));
    expect(digests).toHaveLength(9);
    expect(digests.filter((d) => ours.has(d))).toEqual([]);
  }, 60_000);

  it('does not depend on manifest order or image order', async () => {
    const reversed = await manifestOf([...rows].reverse().map((r) => ({ ...r, images: [...r.images].reverse() })));
    const again = await rowsOf<GeneratedRow>((await run(input({ perInstance: 3 }, 'synth-reversed', reversed))).generated);
    const byInstance = (list: GeneratedRow[]) => Object.fromEntries(list.map((r) => [r.instance_id, r.images.map((i) => i.sha256)]));
    expect(again.map((r) => r.instance_id)).toEqual(['vase-grey', 'bottle-green', 'mug-red']);
    expect(byInstance(again)).toEqual(byInstance(generated));
  }, 60_000);

  it('stops after maxInstances instances with real photos', async () => {
    const some = await run(input({ perInstance: 1, maxInstances: 2 }, 'synth-max'));
    expect(some.counts).toEqual({ instances: 2, generated: 2, skipped: 1, dropped: 0 });
    expect((await rowsOf<GeneratedRow>(some.generated)).map((r) => r.instance_id)).toEqual(['mug-red', 'bottle-green']);
  }, 60_000);

  it('drops and counts variants whose edit changes nothing, as on a blank white photo', async () => {
    const white = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ffffff' } }).jpeg({ quality: 90 }).toBuffer();
    const ref = await store.putBytes(white);
    const blank = await manifestOf([row('blank', [{ role: 'listing', sha256: ref.sha256, width: 64, height: 48 }])]);
    const none = await run(input({ perInstance: 2, edits: ['recolor', 'shape'] }, 'synth-blank', blank));
    expect(none.counts).toEqual({ instances: 0, generated: 0, skipped: 0, dropped: 2 });
    expect(none.items.bytes).toBe(0);
  });

  it('writes empty artifacts for perInstance 0', async () => {
    const none = await run(input({ perInstance: 0 }, 'synth-none'));
    expect(none.counts).toEqual({ instances: 0, generated: 0, skipped: 2, dropped: 0 });
    expect([none.generated.bytes, none.items.bytes]).toEqual([0, 0]);
  });

  it('heartbeats progress in images', () => {
    const progress = beats.map((b) => (b as { progress: { done: number; total: number; unit: string } }).progress);
    expect(progress[0]).toEqual({ done: 0, total: 9, unit: 'images' });
    expect(progress.at(-1)).toEqual({ done: 9, total: 9, unit: 'images' });
  });

  it('stops when cancelled', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.once('heartbeat', () => env.cancel()); // the first beat comes before any image is edited
    const err = await failure(run(input({ perInstance: 3 }, 'synth-cancel'), env));
    expect(err).toBeInstanceOf(CancelledFailure);
  });
});

describe('twin/synthesize-variants inputs', () => {
  const ref = { uri: `artifact:sha256:${'a'.repeat(64)}`, sha256: 'a'.repeat(64), bytes: 1 };

  it('fills the documented defaults', () => {
    expect(synthesizeInputs.parse({ instances: ref })).toEqual({ instances: ref, perInstance: 3, edits: ['recolor', 'patch', 'shape'], seed: 0 });
  });

  it('rejects a negative perInstance, an unknown edit and a repeated edit', () => {
    expect(synthesizeInputs.safeParse({ instances: ref, perInstance: -1 }).success).toBe(false);
    expect(synthesizeInputs.safeParse({ instances: ref, perInstance: 21 }).success).toBe(false);
    expect(synthesizeInputs.safeParse({ instances: ref, edits: ['recolor', 'blur'] }).success).toBe(false);
    expect(synthesizeInputs.safeParse({ instances: ref, edits: ['patch', 'patch'] }).success).toBe(false);
    expect(synthesizeInputs.safeParse({ instances: ref, edits: [] }).success).toBe(false);
  });

  it('fails the stage without retries on invalid inputs, naming the field', async () => {
    const err = await failure(run(input({ perInstance: -1 }, 'synth-bad')));
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(err.message).toContain('with.perInstance');
  });

  it('refuses a manifest whose images were not prepared, saying which stage to run', async () => {
    const raw = await manifestOf([row('raw', [{ path: '/nowhere/photo.jpg', role: 'listing' }])]);
    const err = await failure(run(input({}, 'synth-raw', raw)));
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(err.message).toMatch(/raw has an image without sha256.*images\/prepare/);
  });
});
