/*
 * Scenarios (embed/images with the real converted MobileNetV2Mid, on CPU):
 * - Six pictures drawn in code (three originals, a cropped, resized and brightened variant of
 *   each) give a 6 x 1792 float32 matrix and an index in manifest order.
 * - Rows are unit length; each variant's nearest neighbour by cosine is its original.
 * - The same inputs give byte-identical output; batch size 1 and 4 give the same rows.
 * - A bad preprocessing spec, a missing model and a spec whose dims disagree with the model
 *   fail without retries and say what to fix.
 * - Progress heartbeats count images; cancelling stops the stage between batches.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../../activities/data/manifest.js';
import { createEmbedImages, type EmbedIndexRow } from '../../activities/embed/embed-images.js';
import { cosine, dot, readMatrix, row, type Matrix } from '../../activities/embed/matrix.js';
import { convertTfjsGraphToOnnx, loadNsfwjsMobileNetV2Mid, MOBILENET_V2_MID_FEATURE_NODE } from '../../activities/embed/tfjs-to-onnx.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { DEFAULT_EMBED_MODEL, MATRIX_MEDIA_TYPE, preprocessPathFor } from '../../engine/kinds/embed.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';

const DIMS = 1792;

interface EmbedOutputs {
  embeddings: ArtifactRef;
  index: ArtifactRef;
  counts: { images: number; dims: number };
}

let home: HomeLayout;
let store: ArtifactStore;
let embedImages: ReturnType<typeof createEmbedImages>;
let manifest: ArtifactRef;
let model: string;
let imagePaths: string[];

/** A 320x240 picture drawn in code; each seed is a different scene. */
function picture(seed: number): Sharp {
  const w = 320;
  const h = 240;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inDisc = (x - 100 - 60 * seed) ** 2 + (y - 120) ** 2 < (50 + 10 * seed) ** 2;
      const stripe = seed === 1 && Math.floor(x / 16) % 2 === 0;
      const checker = seed === 2 && (Math.floor(x / 24) + Math.floor(y / 24)) % 2 === 0;
      px[i] = inDisc ? 230 : checker ? 20 : (x * 255) / w;
      px[i + 1] = inDisc ? 40 : stripe ? 200 : (y * 255) / h;
      px[i + 2] = inDisc ? 60 : 128 + 100 * Math.sin((x + y) / (20 + 15 * seed));
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

/** The default model, or a fresh conversion into a temporary folder when setup has not run. */
async function ensureModel(dir: string): Promise<string> {
  if (await fs.access(DEFAULT_EMBED_MODEL).then(() => true, () => false)) return path.resolve(DEFAULT_EMBED_MODEL);
  const file = path.join(dir, 'mobilenet_v2_mid.onnx');
  const { modelJson, weights } = loadNsfwjsMobileNetV2Mid();
  const inputName = modelJson.modelTopology.node.find((n) => n.op === 'Placeholder')?.name ?? 'input';
  await fs.writeFile(file, convertTfjsGraphToOnnx({ modelJson, weights, outputNode: MOBILENET_V2_MID_FEATURE_NODE, outputName: 'embedding' }));
  const spec = { inputName, outputName: 'embedding', size: 224, layout: 'NHWC', scale: '0..1', mean: [0, 0, 0], std: [1, 1, 1], dims: DIMS };
  await fs.writeFile(preprocessPathFor(file), JSON.stringify(spec));
  return file;
}

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-embed-')));
  store = new ArtifactStore(home.artifactsDir);
  embedImages = createEmbedImages({ store, home });
  model = await ensureModel(home.root);
  const rows: ManifestRow[] = [];
  imagePaths = [];
  for (const seed of [0, 1, 2]) {
    const original = path.join(home.root, `picture-${seed}.jpg`);
    const variant = path.join(home.root, `picture-${seed}-variant.png`);
    await picture(seed).jpeg({ quality: 92 }).toFile(original);
    const cropped = await picture(seed).extract({ left: 20, top: 16, width: 280, height: 208 }).png().toBuffer();
    await sharp(cropped).resize(200, 150).modulate({ brightness: 1.15 }).png().toFile(variant);
    imagePaths.push(original, variant);
    // The variant gets no sha256, as a raw manifest would have: the stage hashes the file.
    const sha256 = (await store.putFile(original)).sha256;
    rows.push({
      instance_id: `item-${seed}`, asins: [`item-${seed}`], title: `Item ${seed}`, category: 'test',
      images: [{ path: original, role: 'listing', sha256 }, { path: variant, role: 'review' }],
    });
  }
  manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
}, 120_000);
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function input(extra: JsonObject = {}, stageId = 'embed'): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'embed/images', kindVersion: '1', with: { instances: { ...manifest }, model, ...extra }, shellEnv: {} };
}

async function run(i: StageActivityInput, env = new MockActivityEnvironment({ attempt: 1 })) {
  const result = (await env.run(embedImages, i)) as StageActivityResult;
  return result.outputs as unknown as EmbedOutputs;
}


const rowsOf = <T>(ref: ArtifactRef) => jsonlRows<T>(store, ref);

describe('embed/images', () => {
  let out: EmbedOutputs;
  let matrix: Matrix;
  const beats: unknown[] = [];

  beforeAll(async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const started = performance.now();
    out = await run(input({ batchSize: 4 }), env);
    const seconds = (performance.now() - started) / 1000;
    console.log(`embed/images: ${out.counts.images} images in ${seconds.toFixed(2)} s (${(out.counts.images / seconds).toFixed(1)} images/s, session included)`);
    matrix = await readMatrix((await store.file(out.embeddings)), out.counts.dims);
  }, 120_000);

  it('writes one float32 row of 1792 per image', () => {
    expect(out.counts).toEqual({ images: 6, dims: DIMS });
    expect(out.embeddings.bytes).toBe(6 * DIMS * 4);
    expect(out.embeddings.mediaType).toBe(MATRIX_MEDIA_TYPE);
    expect(matrix.rows).toBe(6);
  });

  it('indexes the rows in manifest order, with every image digested', async () => {
    const index = await rowsOf<EmbedIndexRow>(out.index);
    expect(index.map((r) => r.row)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(index.map((r) => r.image)).toEqual(imagePaths);
    expect(index.map((r) => r.instance_id)).toEqual(['item-0', 'item-0', 'item-1', 'item-1', 'item-2', 'item-2']);
    const digests = await Promise.all(imagePaths.map(async (p) => (await store.putFile(p)).sha256));
    expect(index.map((r) => r.sha256)).toEqual(digests);
  });

  it('L2-normalizes the rows', () => {
    for (let i = 0; i < matrix.rows; i++) expect(Math.sqrt(dot(row(matrix, i), row(matrix, i)))).toBeCloseTo(1, 5);
  });

  it("finds each variant's original as its nearest neighbour", () => {
    for (const variant of [1, 3, 5]) {
      const others = [0, 1, 2, 3, 4, 5].filter((j) => j !== variant);
      const scores = others.map((j) => cosine(row(matrix, variant), row(matrix, j)));
      expect(others[scores.indexOf(Math.max(...scores))]).toBe(variant - 1);
    }
  });

  it('gives byte-identical output for the same inputs', async () => {
    const again = await run(input({ batchSize: 4 }, 'embed-again'));
    expect(again.embeddings.sha256).toBe(out.embeddings.sha256);
    expect(again.index.sha256).toBe(out.index.sha256);
  }, 120_000);

  it('gives the same rows whatever the batch size', async () => {
    const single = await run(input({ batchSize: 1 }, 'embed-single'));
    const other = await readMatrix((await store.file(single.embeddings)), DIMS);
    let worst = 0;
    for (let i = 0; i < matrix.data.length; i++) worst = Math.max(worst, Math.abs(matrix.data[i]! - other.data[i]!));
    expect(worst).toBeLessThan(1e-5);
  }, 120_000);

  it('heartbeats progress in images', () => {
    const progress = beats.map((b) => (b as { progress: { done: number; total: number; unit: string } }).progress);
    expect(progress[0]).toEqual({ done: 0, total: 6, unit: 'images' });
    expect(progress.at(-1)).toEqual({ done: 6, total: 6, unit: 'images' });
  });

  it('stops between batches when cancelled', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    env.once('heartbeat', () => env.cancel()); // the first beat comes before any batch is decoded
    const err = await failure(run(input({ batchSize: 2 }, 'embed-cancel'), env));
    expect(err).toBeInstanceOf(CancelledFailure);
  });

  it('rejects a bad preprocessing spec, naming the file and the field', async () => {
    const spec = path.join(home.root, 'bad.preprocess.json');
    await fs.writeFile(spec, JSON.stringify({ inputName: 'input', outputName: 'embedding', size: 224, layout: 'NWHC', scale: '0..1', mean: [0, 0, 0], std: [1, 1, 1] }));
    const err = await failure(run(input({ preprocess: spec })));
    expect(err).toMatchObject({ type: 'InvalidPreprocessSpec', nonRetryable: true });
    expect(err.message).toContain(spec);
    expect(err.message).toMatch(/layout:.*dims:/);
  });

  it('rejects a missing model, saying how to get one', async () => {
    const err = await failure(run(input({ model: path.join(home.root, 'nowhere.onnx') })));
    expect(err).toMatchObject({ type: 'ModelMissing', nonRetryable: true });
    expect(err.message).toContain('npm run setup');
    expect(err.message).toContain('nowhere.onnx');
  });

  it('rejects a spec whose dims disagree with what the model outputs', async () => {
    const spec = path.join(home.root, 'wrong-dims.preprocess.json');
    const good = JSON.parse(await fs.readFile(preprocessPathFor(model), 'utf8')) as JsonObject;
    await fs.writeFile(spec, JSON.stringify({ ...good, dims: 1000 }));
    const err = await failure(run(input({ preprocess: spec }, 'embed-dims')));
    expect(err).toMatchObject({ type: 'InvalidModel', nonRetryable: true });
    expect(err.message).toMatch(/\[6, 1792\].*dims 1000/);
  }, 60_000);
});
