import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { DREAMBOOTH_ORIGIN } from '../../engine/kinds/dreambooth.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { ManifestImage } from '../data/manifest.js';
import { writeGenerated, type Generated, type GeneratedWriters } from '../twin/generated-output.js';
import type { DreamboothJob, RealImage } from './plan.js';

/** What gpu/dreambooth.py writes last, atomically, into an instance's folder. */
export interface DoneRecord {
  instance: string;
  images: Array<{ file: string; n: number; prompt: string; template: number; seed: number }>;
  /** Relative to the instance folder; null when the weights were not kept. */
  weights: string | null;
  finetune: 'lora' | 'full';
  instance_prompt: string;
  steps: number;
  first_loss: number;
  last_loss: number;
}

/** How a generated image was made: enough to make it again and to show a reviewer what grounded it. */
export interface DreamboothRecord {
  prompt: string;
  template: number;
  /** The seed of the generator that drew this template's images (`num_images_per_prompt` of them). */
  seed: number;
  /** Its place among the instance's images. */
  n: number;
  model: string;
  finetune: 'lora' | 'full';
  steps: number;
  instancePrompt: string;
  /** sha256 of the real images the model was fine-tuned on. */
  grounding: string[];
  /** sha256 of the trained weights file (pytorch_lora_weights.safetensors or the UNet's), null when not kept. */
  weights: string | null;
  /** sha256 of the grounding image shown beside it for review. */
  source: string;
}

/** A manifest image made by `dreambooth/generate`. */
export interface DreamboothImage extends ManifestImage {
  role: 'generated';
  sha256: string;
  width: number;
  height: number;
  origin: typeof DREAMBOOTH_ORIGIN;
  dreambooth: DreamboothRecord;
}

export const readDone = async (file: string): Promise<DoneRecord | undefined> =>
  JSON.parse(await fs.readFile(file, 'utf8').catch(() => 'null')) as DoneRecord | undefined ?? undefined;

export interface CollectContext {
  model: string;
  /** Digests already written: an image with the same bytes is dropped. */
  seen: Set<string>;
  writers: GeneratedWriters;
}

export interface Collected { images: number; dropped: number; weights?: { dir: string; file: string } }

/**
 * Stores one finished instance's images (and names its weights), and writes its manifest
 * row and review items the way twin/synthesize-variants does: `gen:<sha256>` ids, grouped
 * by instance, a real grounding image first. An image whose bytes an earlier one had is left out.
 */
export async function collectInstance(
  store: ArtifactStore, folder: string, job: DreamboothJob, done: DoneRecord, ctx: CollectContext,
): Promise<Collected> {
  const weightsFile = done.weights ? path.join(folder, done.weights) : undefined;
  const weights = weightsFile ? (await store.putFile(weightsFile)).sha256 : null;
  const made: Array<{ image: DreamboothImage; source: RealImage }> = [];
  let dropped = 0;
  for (const g of [...done.images].sort((a, b) => a.n - b.n)) {
    const file = path.join(folder, g.file);
    const ref = await store.putFile(file);
    if (ctx.seen.has(ref.sha256)) { dropped++; continue; }
    ctx.seen.add(ref.sha256);
    const { width = 0, height = 0 } = await sharp(file).metadata();
    const source = job.grounding[g.n % job.grounding.length]!;
    made.push({
      source,
      image: {
        role: 'generated', sha256: ref.sha256, width, height, origin: DREAMBOOTH_ORIGIN,
        dreambooth: {
          prompt: g.prompt, template: g.template, seed: g.seed, n: g.n, model: ctx.model, finetune: done.finetune, steps: done.steps,
          instancePrompt: done.instance_prompt, grounding: job.grounding.map((i) => i.sha256), weights, source: source.sha256,
        },
      },
    });
  }
  await writeRows(ctx.writers, job, made);
  return { images: made.length, dropped, ...(weightsFile && done.weights ? { weights: { dir: job.dir, file: done.weights } } : {}) };
}

async function writeRows(writers: GeneratedWriters, job: DreamboothJob, made: Array<Generated<DreamboothImage>>) {
  // The prompt on its own line of the review page; the whole record after it.
  await writeGenerated(writers, job.row, made, (image) => ({ prompt: image.dreambooth.prompt, dreambooth: image.dreambooth }));
}

/** Hard links (copies where links fail) of every instance's weights folder under `target`, for one folder artifact. */
export async function linkWeights(output: string, target: string, weights: Array<{ dir: string; file: string }>): Promise<void> {
  await fs.rm(target, { recursive: true, force: true });
  for (const { dir, file } of weights) {
    const top = file.split('/')[0]!;
    const from = path.join(output, dir, top);
    const to = top === 'adapter' ? path.join(target, dir) : path.join(target, dir, top);
    await linkTree(from, to);
  }
}

async function linkTree(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    const [a, b] = [path.join(from, entry.name), path.join(to, entry.name)];
    if (entry.isDirectory()) await linkTree(a, b);
    else await fs.link(a, b).catch(() => fs.copyFile(a, b));
  }
}
