import { createHash } from 'node:crypto';
import path from 'node:path';
import { DREAMBOOTH_SCRIPT, type DreamboothSpec } from '../../engine/kinds/dreambooth.js';
import type { ManifestImage, ManifestRow } from '../data/manifest.js';
import { invalidInput } from '../failures.js';
import type { StageActivityInput } from '../stage-io.js';
import { keyedRandom } from '../twin/pairs.js';

export type RealImage = ManifestImage & { sha256: string };

/** One instance's fine-tune: what gpu/dreambooth.py reads from its jobs file, plus what the manifest records. */
export interface DreamboothJob {
  row: ManifestRow;
  /** Its folder under the output folder: one safe name per instance id. */
  dir: string;
  /** The grounding images, in the seeded order they were drawn. */
  grounding: RealImage[];
  /** Seeds its training and, plus the template's index, each template's generator. */
  seed: number;
}

/** The settings both fine-tune kinds default differently (the diffusers DreamBooth README). */
export function trainingDefaults(spec: DreamboothSpec): { steps: number; learningRate: number } {
  const full = spec.finetune === 'full';
  return { steps: spec.steps ?? (full ? 400 : 500), learningRate: spec.learningRate ?? (full ? 5e-6 : 1e-4) };
}

/**
 * The instances to fine-tune, in manifest order, up to `maxInstances`: those with at least
 * one real (listing or review) image. Each gets a seeded count of grounding images in
 * [grounding.min, grounding.max] (fewer if it has fewer), drawn from its distinct real images
 * sorted by digest, so the pick ignores the order images are listed in.
 */
export function planJobs(rows: ManifestRow[], spec: DreamboothSpec, input: StageActivityInput): { jobs: DreamboothJob[]; skipped: number } {
  const jobs: DreamboothJob[] = [];
  const dirs = new Set<string>();
  let skipped = 0;
  for (const row of rows) {
    if (spec.maxInstances !== undefined && jobs.length >= spec.maxInstances) break;
    const real = realImages(row, input);
    if (real.length === 0) { skipped++; continue; }
    const dir = folderName(row.instance_id);
    if (dirs.has(dir)) throw invalidInput(`stage ${input.stageId} (${input.uses}): with.instances: instance ${row.instance_id} appears twice; pass the output of twin/merge`);
    dirs.add(dir);
    jobs.push({ row, dir, grounding: pickGrounding(real, spec, row.instance_id), seed: Math.floor(keyedRandom(spec.seed, row.instance_id, 'seed')() * 2 ** 31) });
  }
  return { jobs, skipped };
}

function realImages(row: ManifestRow, input: StageActivityInput): RealImage[] {
  const real = new Map<string, RealImage>();
  for (const image of row.images) {
    if (image?.role !== 'listing' && image?.role !== 'review') continue;
    if (!image.sha256) {
      throw invalidInput(
        `stage ${input.stageId} (${input.uses}): with.instances: instance ${row.instance_id} has an image without sha256 ` +
        `(${String(image.path ?? image.origin)}); pass a prepared manifest (the instances output of images/prepare or twin/merge)`,
      );
    }
    if (!real.has(image.sha256)) real.set(image.sha256, image as RealImage);
  }
  return [...real.values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
}

/** A seeded draw without replacement (a partial Fisher-Yates shuffle of the sorted images). */
export function pickGrounding(real: RealImage[], spec: Pick<DreamboothSpec, 'grounding' | 'seed'>, instanceId: string): RealImage[] {
  const random = keyedRandom(spec.seed, instanceId, 'grounding');
  const { min, max } = spec.grounding;
  const k = Math.min(real.length, min + Math.floor(random() * (max - min + 1)));
  const pool = [...real];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, k);
}

/** The instance id as one folder name: kept when it is plain, else made plain and told apart by a digest. */
export function folderName(id: string): string {
  const plain = id.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '_').slice(0, 80);
  return plain === id ? id : `${plain}-${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;
}

/** The line of the jobs file gpu/dreambooth.py reads for one instance. */
export function jobLine(job: DreamboothJob, files: string[]): string {
  return JSON.stringify({ instance: job.row.instance_id, dir: job.dir, category: job.row.category, images: files, seed: job.seed });
}

export interface Paths { model: string; jobs: string; output: string; progress: string }

/**
 * What decides an instance's outputs besides its own images and seed (both drawn from the
 * spec): the script's settings and the base model. Names the output folder, so finished
 * instances are reused only by an attempt with the same settings.
 */
export function settingsDigest(spec: DreamboothSpec): string {
  const settings = dreamboothArgv(spec, { model: '', jobs: '', output: '', progress: '' }).slice(2);
  const model = typeof spec.model === 'string' ? spec.model : spec.model.sha256;
  return createHash('sha256').update(JSON.stringify({ settings, model, seed: spec.seed, grounding: spec.grounding })).digest('hex').slice(0, 16);
}

/** gpu/dreambooth.py's command line for one batch of instances. */
export function dreamboothArgv(spec: DreamboothSpec, paths: Paths): [string, ...string[]] {
  const { steps, learningRate } = trainingDefaults(spec);
  const python = spec.python.includes('/') ? path.resolve(spec.python) : spec.python;
  return [
    python, DREAMBOOTH_SCRIPT,
    '--pretrained', paths.model, '--instances', paths.jobs, '--output', paths.output, '--progress', paths.progress,
    '--finetune', spec.finetune, '--max-train-steps', String(steps), '--learning-rate', String(learningRate),
    '--rank', String(spec.rank), '--resolution', String(spec.resolution), '--train-batch-size', String(spec.batchSize),
    '--identifier', spec.identifier,
    ...(spec.priorPreservation ? ['--with-prior-preservation', '--prior-loss-weight', String(spec.priorLossWeight), '--num-class-images', String(spec.classImages)] : []),
    '--num-images', String(spec.perInstance), '--inference-steps', String(spec.inferenceSteps), '--guidance-scale', String(spec.guidance),
    '--mixed-precision', spec.precision, spec.keepWeights ? '--keep-weights' : '--no-keep-weights',
    ...spec.templates.flatMap((t) => ['--template', t]),
  ];
}
