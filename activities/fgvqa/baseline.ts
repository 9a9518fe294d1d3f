import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { preprocessPathFor } from '../../engine/kinds/embed.js';
import { preprocessSpecSchema, type PreprocessSpec } from '../embed/embed-images.js';
import { dot, l2Normalize } from '../embed/matrix.js';
import { decodePixels, pixelsToInput } from '../embed/pixels.js';
import { readJsonl } from '../data/jsonl.js';

/**
 * A real non-VLM baseline for FGVQA: it answers from image-embedding cosine similarity.
 * A pair is "yes" when its cosine reaches the threshold; a multi query's answer is how
 * many candidates reach it against the reference. The threshold is calibrated on
 * labelled pairs (the one that answers most of them right).
 */

/** An ONNX image encoder with its preprocessing spec (models/*.preprocess.json). */
export class ImageEncoder {
  private constructor(private readonly session: ort.InferenceSession, private readonly pre: PreprocessSpec) {}

  static async open(model: string, threads = Math.min(4, os.availableParallelism())): Promise<ImageEncoder> {
    const pre = preprocessSpecSchema.parse(JSON.parse(await fs.readFile(preprocessPathFor(model), 'utf8')));
    const session = await ort.InferenceSession.create(path.resolve(model), { intraOpNumThreads: threads, interOpNumThreads: 1 });
    return new ImageEncoder(session, pre);
  }

  /** L2-normalised embeddings, one per image (a file path or its bytes). */
  async embed(images: Array<string | Buffer>): Promise<Float32Array[]> {
    const pixels = await Promise.all(images.map((img) => decodePixels(img, this.pre.size)));
    const n = images.length;
    const shape = this.pre.layout === 'NHWC' ? [n, this.pre.size, this.pre.size, 3] : [n, 3, this.pre.size, this.pre.size];
    const out = (await this.session.run({ [this.pre.inputName]: new ort.Tensor('float32', pixelsToInput(pixels, this.pre), shape) }))[this.pre.outputName]!;
    const data = out.data as Float32Array;
    const dims = data.length / n;
    return Array.from({ length: n }, (_, i) => l2Normalize(new Float32Array(data.subarray(i * dims, (i + 1) * dims))));
  }

  close(): Promise<void> {
    return this.session.release();
  }
}

/** The threshold that answers the most labelled pairs right (midpoint between neighbouring cosines). */
export function calibrateThreshold(pairs: Array<{ cosine: number; same: boolean }>): { threshold: number; accuracy: number } {
  const sorted = [...pairs].sort((a, b) => a.cosine - b.cosine);
  // Threshold below everything: every pair answered yes.
  let correct = sorted.filter((p) => p.same).length;
  let best = { threshold: (sorted[0]?.cosine ?? 0) - 1e-6, correct };
  sorted.forEach((p, i) => {
    correct += p.same ? -1 : 1;
    const next = sorted[i + 1]?.cosine ?? p.cosine + 2e-6;
    if (correct > best.correct) best = { threshold: (p.cosine + next) / 2, correct };
  });
  return { threshold: Math.round(best.threshold * 1e6) / 1e6, accuracy: sorted.length ? best.correct / sorted.length : 0 };
}

/** Labelled pair queries (fgvqa/build's JSONL) -> the threshold that answers most right; undefined when the file holds none. */
export async function calibrateOnPairs(encoder: ImageEncoder, file: string): Promise<{ threshold: number; accuracy: number; pairs: number } | undefined> {
  const pairs: Array<{ cosine: number; same: boolean }> = [];
  for await (const { value: q } of readJsonl<{ type: string; images: string[]; answer: string }>(file)) {
    if (q.type !== 'pair' || q.images?.length !== 2) continue;
    const [a, b] = await encoder.embed(q.images);
    pairs.push({ cosine: dot(a!, b!), same: String(q.answer).toLowerCase() === 'yes' });
  }
  return pairs.length ? { ...calibrateThreshold(pairs), pairs: pairs.length } : undefined;
}

/** The baseline's answer to one query: two images make a pair, a reference and candidates a multi query. */
export function answerFromEmbeddings(vectors: Float32Array[], threshold: number): string {
  const [ref, ...rest] = vectors;
  if (!ref || rest.length === 0) return 'I need at least two images. <answer>no</answer>';
  const cosines = rest.map((v) => dot(ref, v));
  const shown = cosines.map((c) => c.toFixed(3)).join(', ');
  if (rest.length === 1) return `Embedding cosine ${shown} against threshold ${threshold}. <answer>${cosines[0]! >= threshold ? 'yes' : 'no'}</answer>`;
  return `Embedding cosines ${shown} against threshold ${threshold}. <answer>${cosines.filter((c) => c >= threshold).length}</answer>`;
}
