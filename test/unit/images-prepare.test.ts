import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { createPrepareImages, QUARANTINE_MEDIA_TYPE, type QuarantineRow } from '../../activities/images/prepare.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';

interface PrepareOutputs {
  instances: ArtifactRef;
  quarantine: ArtifactRef;
  counts: { instances: number; images: number; prepared: number; quarantined: number; deduplicated: number; largestReservationMB: number };
}

let home: HomeLayout;
let store: ArtifactStore;
let prepareImages: ReturnType<typeof createPrepareImages>;
let corpus: string;
let manifest: ArtifactRef;

/** Deterministic noise, so distinct test images never encode to the same bytes by accident. */
function noise(width: number, height: number, seed: number, channels: 3 | 4 = 3) {
  const pixels = Buffer.alloc(width * height * channels);
  let x = seed;
  for (let i = 0; i < pixels.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    pixels[i] = (x >> 16) & 255;
  }
  return sharp(pixels, { raw: { width, height, channels } });
}

/** A real PNG whose header claims 50000 x 50000 pixels (CRC fixed, so only the size is wrong). */
async function pixelBomb(): Promise<Buffer> {
  const png = await noise(8, 8, 9).png().toBuffer();
  // IHDR data starts at byte 16: 8-byte signature, 4-byte length, 4-byte type.
  png.writeUInt32BE(50_000, 16);
  png.writeUInt32BE(50_000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

async function animatedGif(): Promise<Buffer> {
  const frames = await Promise.all([0, 1, 2].map((i) => noise(40, 30, 20 + i).png().toBuffer()));
  return sharp(frames, { join: { animated: true } }).gif().toBuffer();
}

async function writeCorpus(dir: string): Promise<Record<string, string>> {
  const jpeg = await noise(300, 200, 1).jpeg().toBuffer();
  const corrupt = Buffer.from(jpeg);
  for (let i = 0; i < 400; i++) corrupt[(corrupt.length >> 1) + i] = (i * 37) & 255;
  const twin = await noise(64, 48, 7).jpeg().toBuffer();
  const files: Record<string, Buffer | string> = {
    'normal.jpg': jpeg,
    'normal.png': await noise(200, 150, 2).png().toBuffer(),
    'rotated.jpg': await noise(300, 200, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'wide.png': await noise(2000, 1000, 4).png().toBuffer(),
    'cmyk.jpg': await noise(120, 80, 5).toColourspace('cmyk').jpeg().toBuffer(),
    'twin-a.jpg': twin,
    'twin-b.jpg': twin,
    'empty.jpg': Buffer.alloc(0),
    'truncated.jpg': jpeg.subarray(0, jpeg.length >> 1),
    'corrupt.jpg': corrupt,
    'random.jpg': await noise(32, 32, 11).raw().toBuffer(),
    'notes.txt': 'these are not the pixels you are looking for\n',
    'animated.gif': await animatedGif(),
    'bomb.png': await pixelBomb(),
  };
  const paths: Record<string, string> = { 'missing.jpg': path.join(dir, 'missing.jpg') };
  for (const [name, bytes] of Object.entries(files)) {
    paths[name] = path.join(dir, name);
    await fs.writeFile(paths[name], bytes);
  }
  return paths;
}

function row(id: string, images: Array<{ path: string; origin?: string }>): ManifestRow {
  return { instance_id: id, asins: [id], title: `Title ${id}`, category: 'Mugs', images: images.map((i) => ({ ...i, role: 'listing' })) };
}

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-prepare-')));
  store = new ArtifactStore(home.artifactsDir);
  prepareImages = createPrepareImages({ store, home });
  corpus = path.join(home.root, 'corpus');
  await fs.mkdir(corpus);
  const f = await writeCorpus(corpus);
  const at = (...names: string[]) => names.map((name) => ({ path: f[name]! }));
  const rows = [
    row('good', [...at('normal.jpg', 'normal.png'), { path: f['missing.jpg']!, origin: 'https://example.com/missing.jpg' }]),
    row('rotated', at('rotated.jpg')),
    row('wide', at('wide.png', 'cmyk.jpg')),
    row('twins', [{ path: f['twin-a.jpg']!, origin: 'https://example.com/a.jpg' }, ...at('twin-b.jpg')]),
    row('all-bad', at('empty.jpg', 'truncated.jpg', 'corrupt.jpg', 'random.jpg', 'notes.txt', 'animated.gif', 'bomb.png')),
    row('no-images', []),
  ];
  manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function input(extra: JsonObject = {}, stageId = 'prepare'): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'images/prepare', kindVersion: '2', with: { instances: { ...manifest }, ...extra }, shellEnv: {} };
}

async function run(i: StageActivityInput, env = new MockActivityEnvironment({ attempt: 1 })) {
  const result = (await env.run(prepareImages, i)) as StageActivityResult;
  return result.outputs as unknown as PrepareOutputs;
}


const rowsOf = <T>(ref: ArtifactRef) => jsonlRows<T>(store, ref);

describe('images/prepare activity', () => {
  let outputs: PrepareOutputs;
  let kept: Map<string, ManifestRow>;
  let quarantine: QuarantineRow[];
  const beats: unknown[] = [];
  beforeAll(async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.on('heartbeat', (d: unknown) => beats.push(d));
    outputs = await run(input({ concurrency: 3 }), env);
    kept = new Map((await rowsOf<ManifestRow>(outputs.instances)).map((r) => [r.instance_id, r]));
    quarantine = await rowsOf<QuarantineRow>(outputs.quarantine);
  });
  const reasonFor = (name: string) => quarantine.find((q) => q.path === path.join(corpus, name))?.reason;

  it('succeeds with the usable images and counts what happened to every image', () => {
    const { largestReservationMB, ...counts } = outputs.counts;
    expect(counts).toEqual({ instances: 4, images: 15, prepared: 7, quarantined: 8, deduplicated: 1 });
    expect(largestReservationMB).toBeGreaterThan(0); // every decode reserved memory first
    expect(largestReservationMB).toBeLessThanOrEqual(1024);
    expect(outputs.instances.mediaType).toBe(MANIFEST_MEDIA_TYPE);
    expect(outputs.instances.counts).toEqual({ instances: 4, images: 7 });
    expect(outputs.quarantine.mediaType).toBe(QUARANTINE_MEDIA_TYPE);
    expect(outputs.quarantine.counts).toEqual({ rows: 10, images: 8 });
  });

  it('quarantines every bad file with a reason a person can act on', () => {
    expect(reasonFor('missing.jpg')).toBe('file not found');
    expect(reasonFor('empty.jpg')).toBe('empty file (0 bytes)');
    expect(reasonFor('truncated.jpg')).toBe('truncated or corrupt: the jpeg file ends early (no end marker)');
    expect(reasonFor('corrupt.jpg')).toBe('truncated or corrupt: the jpeg pixel data does not decode');
    expect(reasonFor('random.jpg')).toBe('not an image: Input file contains unsupported image format');
    expect(reasonFor('notes.txt')).toBe('not an image: Input file contains unsupported image format');
    expect(reasonFor('animated.gif')).toBe('animated image (3 frames)');
    expect(reasonFor('bomb.png')).toBe('too many pixels: 50000 x 50000 exceeds maxPixels 40000000');
    expect(quarantine.find((q) => q.path?.endsWith('missing.jpg'))?.origin).toBe('https://example.com/missing.jpg');
  });

  it('drops instances left without images and reports them', () => {
    expect(kept.has('all-bad')).toBe(false);
    expect(kept.has('no-images')).toBe(false);
    const dropped = quarantine.filter((q) => q.reason === 'no usable images');
    expect(dropped).toEqual([
      { instance_id: 'all-bad', reason: 'no usable images' },
      { instance_id: 'no-images', reason: 'no usable images' },
    ]);
    expect([...kept.keys()]).toEqual(['good', 'rotated', 'wide', 'twins']);
  });

  it('keeps every manifest field and names surviving images by the digest of their measured store files, never by host path', async () => {
    const good = kept.get('good')!;
    expect(good).toMatchObject({ asins: ['good'], title: 'Title good', category: 'Mugs' });
    expect(good.images).toHaveLength(2);
    for (const image of good.images) {
      expect(image.role).toBe('listing');
      expect(image.path).toBeUndefined();
      const meta = await sharp(await store.file(image.sha256!)).metadata();
      expect(meta).toMatchObject({ format: 'jpeg', width: image.width, height: image.height });
    }
    expect(kept.get('twins')!.images[0]!.origin).toBe('https://example.com/a.jpg');
  });

  it('applies EXIF orientation: a 300x200 image tagged orientation 6 comes out 200x300 with no tag', async () => {
    const image = kept.get('rotated')!.images[0]!;
    expect([image.width, image.height]).toEqual([200, 300]);
    const meta = await sharp(await store.file(image.sha256!)).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([200, 300, undefined]);
  });

  it('caps the longest side at 512 and converts CMYK to 3-channel sRGB', async () => {
    const [wide, cmyk] = kept.get('wide')!.images;
    expect([wide!.width, wide!.height]).toEqual([512, 256]);
    expect([cmyk!.width, cmyk!.height]).toEqual([120, 80]);
    const meta = await sharp(await store.file(cmyk!.sha256!)).metadata();
    expect([meta.space, meta.channels]).toEqual(['srgb', 3]);
  });

  it('stores byte-identical images once and counts the duplicate', () => {
    const [a, b] = kept.get('twins')!.images;
    expect(a!.sha256).toBe(b!.sha256);
  });

  it('gives byte-identical manifests for the same input, whatever the concurrency', async () => {
    const again = await run(input({ concurrency: 1 }, 'prepare-again'));
    const wide = await run(input({ concurrency: 16 }, 'prepare-wide'));
    expect(again.instances.sha256).toBe(outputs.instances.sha256);
    expect(wide.instances.sha256).toBe(outputs.instances.sha256);
    expect(wide.quarantine.sha256).toBe(outputs.quarantine.sha256);
  });

  it('heartbeats progress in images', () => {
    expect(beats[0]).toEqual({ progress: { done: 0, total: 15, unit: 'images' } });
    expect(beats).toContainEqual({ progress: { done: 15, total: 15, unit: 'images' } });
  });

  it('honours maxSide, format and maxPixels', async () => {
    const small = await run(input({ maxSide: 64, format: 'png', maxPixels: 100_000 }, 'prepare-small'));
    const rows = await rowsOf<ManifestRow>(small.instances);
    const wide = rows.find((r) => r.instance_id === 'wide')!.images;
    expect(wide).toHaveLength(1); // 2000x1000 is over 100k pixels now
    expect([wide[0]!.width, wide[0]!.height]).toEqual([64, 43]);
    expect((await sharp(await store.file(wide[0]!.sha256!)).metadata()).format).toBe('png');
    const report = await rowsOf<QuarantineRow>(small.quarantine);
    expect(report.find((q) => q.path?.endsWith('wide.png'))?.reason).toBe('too many pixels: 2000 x 1000 exceeds maxPixels 100000');
  });

  it('fails without retrying when the manifest artifact is not in the store, saying what to do', async () => {
    const sha256 = 'f'.repeat(64);
    const gone = { uri: `artifact:sha256:${sha256}`, sha256, bytes: 10 };
    const err = await failure(run({ ...input(), with: { instances: gone } }));
    expect(err).toMatchObject({ type: 'ArtifactMissing', nonRetryable: true });
    expect(err.message).toContain(gone.uri);
    expect(err.message).toMatch(/run the stage that produced it again/i);
  });

  it('rejects inputs outside the schema without retrying', async () => {
    const err = await failure(run(input({ maxSide: 4 })));
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
  });

  it('stops scheduling images and fails as cancelled when the stage is cancelled', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.once('heartbeat', () => env.cancel()); // the first beat comes before any image is decoded
    const err = await failure(run(input({ concurrency: 1 }, 'prepare-cancel'), env));
    expect(err).toBeInstanceOf(CancelledFailure);
  });
});
