import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { EMBED_INDEX_MEDIA_TYPE, MATRIX_MEDIA_TYPE, embedInputs, preprocessPathFor } from '../../engine/kinds/embed.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter, readJsonl } from '../data/jsonl.js';
import type { ManifestRow } from '../data/manifest.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { countManifestImages, manifestFile } from '../data/manifest-input.js';
import type { StageActivityInput } from '../stage-io.js';
import { l2Normalize, toLittleEndian } from './matrix.js';
import { decodePixels, pixelsToInput } from './pixels.js';
import { sha256File } from '../host-files.js';
import { FAILURE, invalidInput, invalidModel, type FailureType } from '../failures.js';
import { embedKind } from '../../engine/kinds/embed.js';
import type { Implementation } from '../kind-implementation.js';

/** The preprocessing spec that travels with an encoder (see scripts/convert-embedding-model.ts). */
export const preprocessSpecSchema = z.object({
  inputName: z.string().min(1),
  outputName: z.string().min(1),
  size: z.number().int().min(8).max(4096),
  layout: z.enum(['NHWC', 'NCHW']),
  /** How pixel bytes become numbers before mean/std: b/255, b, or b/127.5 - 1. */
  scale: z.enum(['0..1', '0..255', '-1..1']),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  dims: z.number().int().positive(),
});
export type PreprocessSpec = z.infer<typeof preprocessSpecSchema>;

/** One line of the index: which image a matrix row embeds. */
export interface EmbedIndexRow {
  row: number;
  instance_id: string;
  /** Where the image came from (its origin, or the host file of an unprepared manifest); provenance only. */
  image?: string;
  sha256: string;
}

type EmbedSpec = z.infer<typeof embedInputs>;
/** One image to embed: a prepared image by digest, or (unprepared manifests) a host file. */
interface Job { instance_id: string; sha256?: string; path?: string; origin?: string }

const HEARTBEAT_MS = 200;

/**
 * `embed/images`: one row of a float32 matrix per image of a prepared manifest, in manifest
 * order, from any ONNX image encoder its preprocessing spec describes. One session per call;
 * the next batch decodes while the current one runs, and only one batch is ever in memory.
 */
export function createEmbedImages(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof embedKind> {
  const { store, home } = deps;
  return async function embedImages(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(embedInputs, input);
    const pre = await loadPreprocess(spec, input);
    const manifest = await manifestFile(store, spec.instances, input);
    const total = await countManifestImages(manifest, input);
    const session = await openSession(spec, pre, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    await fs.mkdir(stageDir, { recursive: true });
    const matrix = createWriteStream(path.join(stageDir, 'embeddings.f32'));
    const index = await JsonlWriter.open(path.join(stageDir, 'index.jsonl'));
    const progress = { done: 0, total, unit: 'images' };
    const beat = () => ctx.heartbeat({ progress: { ...progress } });
    beat();
    const timer = setInterval(beat, HEARTBEAT_MS);
    try {
      const embed = (jobs: Job[], batch: Float32Array) => runBatch(session, pre, spec, jobs, batch, input);
      for await (const { jobs, rows } of embedBatches(store, manifest, spec, pre, ctx.cancellationSignal, embed)) {
        await writeRows(matrix, rows);
        for (const job of jobs) await index.write(await indexRow(progress.done++, job));
      }
      beat();
      await Promise.all([endStream(matrix), index.close()]);
      const embeddings = await store.putFile(matrix.path as string, MATRIX_MEDIA_TYPE);
      const indexRef = await store.putFile(index.file, EMBED_INDEX_MEDIA_TYPE);
      embeddings.counts = { rows: total, dims: pre.dims };
      indexRef.counts = { rows: total };
      const outputs = { embeddings, index: indexRef, counts: { images: total, dims: pre.dims } };
      return { outputs, attempt: ctx.info.attempt };
    } finally {
      clearInterval(timer);
      matrix.destroy();
      await index.close().catch(() => undefined);
      await session.release().catch(() => undefined);
    }
  };
}

/**
 * Yields embedded batches in manifest order. Decoding of batch k+1 starts before the rows of
 * batch k are awaited, so sharp (libuv pool) and onnxruntime (its own threads) overlap.
 */
async function* embedBatches(
  store: ArtifactStore,
  manifest: string,
  spec: EmbedSpec,
  pre: PreprocessSpec,
  signal: AbortSignal,
  embed: (jobs: Job[], batch: Float32Array) => Promise<Float32Array>,
): AsyncGenerator<{ jobs: Job[]; rows: Float32Array }> {
  let pending: Promise<{ jobs: Job[]; rows: Float32Array }> | undefined;
  // Runs go one at a time (each already uses every intra-op thread); only decoding runs ahead.
  let previous: Promise<unknown> = Promise.resolve();
  const start = (jobs: Job[]) => {
    const decoded = decodeBatch(store, jobs, pre);
    const after = previous;
    const task = decoded.then(async (batch) => {
      await after.catch(() => undefined);
      return { jobs, rows: await embed(jobs, batch) };
    });
    task.catch(() => undefined); // awaited below; this only keeps Node from calling it unhandled
    previous = task;
    return task;
  };
  let jobs: Job[] = [];
  for await (const job of manifestImages(manifest)) {
    jobs.push(job);
    if (jobs.length < spec.batchSize) continue;
    throwIfCancelled(signal);
    const next = start(jobs);
    jobs = [];
    if (pending) yield await pending;
    pending = next;
  }
  throwIfCancelled(signal);
  const last = jobs.length ? start(jobs) : undefined;
  if (pending) yield await pending;
  if (last) yield await last;
  throwIfCancelled(signal);
}

async function* manifestImages(manifest: string): AsyncGenerator<Job> {
  for await (const { value: row } of readJsonl<ManifestRow>(manifest)) {
    for (const image of Array.isArray(row?.images) ? row.images : []) {
      const { sha256, path: file, origin } = image;
      yield { instance_id: row.instance_id, ...(sha256 ? { sha256 } : { path: file }), ...(origin ?? file ? { origin: origin ?? file } : {}) };
    }
  }
}

/** Decodes a batch (in parallel) into the encoder's input tensor. */
async function decodeBatch(store: ArtifactStore, jobs: Job[], pre: PreprocessSpec): Promise<Float32Array> {
  return pixelsToInput(await Promise.all(jobs.map(async (job) => decode(job, job.sha256 ? await store.file(job.sha256) : job.path ?? '', pre.size))), pre);
}

async function decode(job: Job, file: string, size: number): Promise<Buffer> {
  try {
    return await decodePixels(file, size);
  } catch (err) {
    throw invalidInput(`instance ${job.instance_id}: cannot decode ${job.origin ?? file} (${messageOf(err)}); embed/images reads a prepared manifest, so run images/prepare first`);
  }
}

/** One inference call on a decoded batch (one row per job); rows L2-normalised when `spec.normalize`. probe/encoder runs it too. */
export async function runBatch(
  session: ort.InferenceSession, pre: PreprocessSpec, spec: Pick<EmbedSpec, 'model' | 'normalize'>, jobs: readonly unknown[], batch: Float32Array, input: StageActivityInput,
): Promise<Float32Array> {
  const n = jobs.length;
  const shape = pre.layout === 'NHWC' ? [n, pre.size, pre.size, 3] : [n, 3, pre.size, pre.size];
  const results = await session.run({ [pre.inputName]: new ort.Tensor('float32', batch, shape) });
  const out = results[pre.outputName]!;
  const dims = out.dims.slice(1).reduce((a, b) => a * b, 1);
  if (out.type !== 'float32' || out.dims[0] !== n || dims !== pre.dims) {
    throw invalidModel(`stage ${input.stageId} (${input.uses}): output '${pre.outputName}' of ${spec.model} is ${out.type} [${out.dims.join(', ')}] ` +
        `for a batch of ${n}, but its preprocessing spec says dims ${pre.dims}; fix dims or outputName in the spec`);
  }
  const rows = new Float32Array(out.data as Float32Array); // a copy: the tensor's memory belongs to onnxruntime
  if (spec.normalize) for (let i = 0; i < n; i++) l2Normalize(rows.subarray(i * dims, (i + 1) * dims));
  return rows;
}

export async function loadPreprocess(spec: Pick<EmbedSpec, 'model' | 'preprocess'>, input: StageActivityInput): Promise<PreprocessSpec> {
  const file = spec.preprocess ?? preprocessPathFor(spec.model);
  const where = `stage ${input.stageId} (${input.uses})`;
  const fail = (type: FailureType, message: string) => ApplicationFailure.create({ type, nonRetryable: true, message: `${where}: ${message}` });
  if (!(await exists(spec.model))) {
    throw fail(FAILURE.modelMissing, `model file ${path.resolve(spec.model)} not found; run \`npm run setup\` to convert the default encoder, or point with.model at an ONNX image encoder`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw fail(FAILURE.invalidPreprocessSpec, `cannot read the preprocessing spec ${path.resolve(file)} (${messageOf(err)}); ` +
      'write one next to the model (inputName, outputName, size, layout, scale, mean, std, dims) or set with.preprocess');
  }
  const parsed = preprocessSpecSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw fail(FAILURE.invalidPreprocessSpec, `preprocessing spec ${path.resolve(file)} is invalid: ${problems}`);
}

export async function openSession(spec: Pick<EmbedSpec, 'model' | 'threads'>, pre: PreprocessSpec, input: StageActivityInput): Promise<ort.InferenceSession> {
  const fail = (message: string) => invalidModel(`stage ${input.stageId} (${input.uses}): ${message}`);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path.resolve(spec.model), {
      intraOpNumThreads: spec.threads ?? os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      // Decoding of the next batch runs beside inference; spinning pool threads would steal its cores.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    throw fail(`onnxruntime cannot load ${spec.model}: ${messageOf(err)}`);
  }
  const missing = [
    session.inputNames.includes(pre.inputName) ? undefined : `input '${pre.inputName}' (it has ${session.inputNames.join(', ')})`,
    session.outputNames.includes(pre.outputName) ? undefined : `output '${pre.outputName}' (it has ${session.outputNames.join(', ')})`,
  ].filter(Boolean);
  if (missing.length === 0) return session;
  await session.release();
  throw fail(`${spec.model} has no ${missing.join(' and no ')}; fix inputName/outputName in its preprocessing spec`);
}

async function writeRows(out: WriteStream, rows: Float32Array): Promise<void> {
  const bytes = os.endianness() === 'LE' ? Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength) : toLittleEndian(rows);
  if (!out.write(bytes)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

function endStream(out: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    out.once('error', reject);
    out.end(resolve);
  });
}

/** Prepared images carry their digest; raw ones are hashed here so the index always has one. */
async function indexRow(row: number, job: Job): Promise<EmbedIndexRow> {
  const image = job.origin ? { image: job.origin } : {};
  return { row, instance_id: job.instance_id, ...image, sha256: job.sha256 ?? await sha256File(job.path!) };
}


const exists = (file: string) => fs.access(file).then(() => true, () => false);

function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledFailure('stage cancelled');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
