/*
 * Scenarios:
 * - nsfwjs's MobileNetV2Mid, converted to ONNX and run by onnxruntime-node, matches the same
 *   graph run by TF.js (CPU backend) on synthetic images: shape [N,1792], max abs diff, cosine.
 * - Two crops of one picture embed closer than two different pictures (a weak sanity check).
 * - Ops the converter does not know fail with an error naming the op and the node.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  convertTfjsGraphToOnnx,
  loadNsfwjsMobileNetV2Mid,
  MOBILENET_V2_MID_FEATURE_NODE,
  TfjsConversionError,
  type TfjsGraphModelJson,
} from '../../activities/embed/tfjs-to-onnx.js';

const SIZE = 224;
const DIMS = 1792;

/** A 320x240 RGB picture drawn in code: a gradient background and a disc, varied by `seed`. */
function picture(seed: number): Buffer {
  const w = 320;
  const h = 240;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inDisc = (x - 100 - 60 * seed) ** 2 + (y - 120) ** 2 < (50 + 10 * seed) ** 2;
      const stripe = seed % 2 === 1 && Math.floor(x / 16) % 2 === 0;
      px[i] = inDisc ? 230 : (x * 255) / w;
      px[i + 1] = inDisc ? 40 : stripe ? 200 : (y * 255) / h;
      px[i + 2] = inDisc ? 60 : 128 + 100 * Math.sin((x + y) / (20 + 15 * seed));
    }
  }
  return px;
}

/** Crops, resizes to 224x224 and scales to [0,1], NHWC. */
async function toInput(raw: Buffer, crop: { left: number; top: number; width: number; height: number }): Promise<Float32Array> {
  const out = await sharp(raw, { raw: { width: 320, height: 240, channels: 3 } })
    .extract(crop)
    .resize(SIZE, SIZE, { fit: 'fill' })
    .raw()
    .toBuffer();
  return Float32Array.from(out, (v) => v / 255);
}

const cosine = (a: Float32Array, b: Float32Array): number => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] ?? 0) * (b[i] ?? 0);
    na += (a[i] ?? 0) ** 2;
    nb += (b[i] ?? 0) ** 2;
  }
  return dot / Math.sqrt(na * nb);
};

describe('TF.js graph to ONNX converter on nsfwjs MobileNetV2Mid', () => {
  let dir: string;
  let modelJson: TfjsGraphModelJson;
  let weights: Uint8Array;
  let session: ort.InferenceSession;
  let batch: Float32Array;
  const n = 3;

  beforeAll(async () => {
    ({ modelJson, weights } = loadNsfwjsMobileNetV2Mid());
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-tfjs-to-onnx-'));
    const file = path.join(dir, 'mobilenet_v2_mid.onnx');
    await fs.writeFile(file, convertTfjsGraphToOnnx({ modelJson, weights, outputNode: MOBILENET_V2_MID_FEATURE_NODE }));
    session = await ort.InferenceSession.create(file);
    const full = { left: 0, top: 0, width: 320, height: 240 };
    const images = await Promise.all([
      toInput(picture(1), full),
      toInput(picture(1), { left: 24, top: 16, width: 272, height: 208 }),
      toInput(picture(2), full),
    ]);
    batch = new Float32Array(n * SIZE * SIZE * 3);
    images.forEach((img, k) => batch.set(img, k * img.length));
  });
  afterAll(async () => {
    await session?.release();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function runOnnx(): Promise<Float32Array[]> {
    const out = await session.run({ input: new ort.Tensor('float32', batch, [n, SIZE, SIZE, 3]) });
    const emb = out.embedding;
    expect(emb?.dims).toEqual([n, DIMS]);
    const data = emb?.data as Float32Array;
    return Array.from({ length: n }, (_, k) => data.subarray(k * DIMS, (k + 1) * DIMS));
  }

  async function runTfjs(): Promise<Float32Array[]> {
    await tf.setBackend('cpu');
    const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
    const model = await tf.loadGraphModel(tf.io.fromMemory({
      modelTopology: modelJson.modelTopology as unknown as object,
      weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
      weightData,
    }));
    const input = tf.tensor4d(batch, [n, SIZE, SIZE, 3]);
    const out = model.execute(input, MOBILENET_V2_MID_FEATURE_NODE) as tf.Tensor;
    expect(out.shape).toEqual([n, DIMS]);
    const data = (await out.data()) as Float32Array;
    tf.dispose([input, out]);
    model.dispose();
    return Array.from({ length: n }, (_, k) => data.subarray(k * DIMS, (k + 1) * DIMS));
  }

  it('matches TF.js within 1e-4 and cosine 0.9999 on every image', async () => {
    const [onnxOut, tfOut] = [await runOnnx(), await runTfjs()];
    for (let k = 0; k < n; k++) {
      const a = onnxOut[k] ?? new Float32Array();
      const b = tfOut[k] ?? new Float32Array();
      const maxDiff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? NaN))), 0);
      console.info(`image ${k}: max abs diff ${maxDiff.toExponential(2)}, cosine ${cosine(a, b).toFixed(7)}`);
      expect(maxDiff).toBeLessThan(1e-4);
      expect(cosine(a, b)).toBeGreaterThan(0.9999);
    }
  });

  it('embeds two crops of one picture closer than two different pictures', async () => {
    const [full, crop, other] = await runOnnx();
    const same = cosine(full!, crop!);
    const different = cosine(full!, other!);
    console.info(`cosine: two crops ${same.toFixed(4)}, different pictures ${different.toFixed(4)}`);
    expect(same).toBeGreaterThan(different);
  });

  it('runs one image in well under a second on the CPU', async () => {
    const one = new ort.Tensor('float32', batch.subarray(0, SIZE * SIZE * 3), [1, SIZE, SIZE, 3]);
    await session.run({ input: one });
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await session.run({ input: one });
    const ms = (performance.now() - t0) / 5;
    console.info(`onnxruntime-node: ${ms.toFixed(1)} ms per image`);
    expect(ms).toBeLessThan(1000);
  });

  it('refuses to convert past the feature vector into the Dense head, naming the op', () => {
    expect(() => convertTfjsGraphToOnnx({ modelJson, weights, outputNode: 'Identity' }))
      .toThrow(/op _FusedMatMul \(node StatefulPartitionedCall\/sequential\/dense\/BiasAdd\) is not supported/);
  });
});

describe('TF.js graph to ONNX converter on unsupported graphs', () => {
  it('names an unsupported op and its node', () => {
    const modelJson: TfjsGraphModelJson = {
      modelTopology: {
        node: [
          { name: 'input', op: 'Placeholder', attr: { shape: { shape: { dim: [{ size: '-1' }, { size: '8' }, { size: '8' }, { size: '3' }] } } } },
          { name: 'act', op: 'Tanh', input: ['input'] },
        ],
      },
      weightsManifest: [],
    };
    const convert = () => convertTfjsGraphToOnnx({ modelJson, weights: new Uint8Array(), outputNode: 'act' });
    expect(convert).toThrow(TfjsConversionError);
    expect(convert).toThrow(/op Tanh \(node act\) is not supported/);
  });

  it('names an unsupported fused activation', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const modelJson: TfjsGraphModelJson = {
      modelTopology: {
        node: [
          { name: 'input', op: 'Placeholder', attr: { shape: { shape: { dim: [{ size: '1' }, { size: '4' }, { size: '4' }, { size: '1' }] } } } },
          { name: 'w', op: 'Const' },
          { name: 'b', op: 'Const' },
          { name: 'conv', op: '_FusedConv2D', input: ['input', 'w', 'b'], attr: { fused_ops: { list: { s: [b64('BiasAdd'), b64('Elu')] } } } },
        ],
      },
      weightsManifest: [{ paths: [], weights: [{ name: 'w', shape: [1, 1, 1, 1], dtype: 'float32' }, { name: 'b', shape: [1], dtype: 'float32' }] }],
    };
    expect(() => convertTfjsGraphToOnnx({ modelJson, weights: new Uint8Array(8), outputNode: 'conv' }))
      .toThrow(/_FusedConv2D conv: fused_ops \[BiasAdd, Elu\] not supported/);
  });
});
