import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import type { z } from 'zod';
import { prepareInputs } from '../../engine/kinds/images.js';
import type { JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter, readJsonl } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../data/manifest.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { countManifestImages, manifestFile } from '../data/manifest-input.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';

export const QUARANTINE_MEDIA_TYPE = 'application/x-twinflow-quarantine+jsonl';

/** One line of the quarantine report: a rejected image, or an instance dropped for having none left. */
export interface QuarantineRow {
  instance_id: string;
  /** The rejected image's path; absent on instance rows. */
  path?: string;
  origin?: string;
  reason: string;
}

type PrepareSpec = z.infer<typeof prepareInputs> & { concurrency: number };
type ImageOutcome = { image: ManifestImage; reason?: undefined } | { image?: undefined; reason: string };

const HEARTBEAT_MS = 200;
/** Rasters only: libvips would also render SVG and PDF, which are not photos and may reference other files. */
const RASTER_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);
/*
 * 'warning' is the only level that rejects a JPEG whose middle is garbage ('truncated' and
 * 'error' decode it with grey blocks); grey blocks in training data cost more than the few
 * slightly-off but viewable files this also turns away.
 */
const FAIL_ON = 'warning';

/**
 * `images/prepare`: decodes every image of an instance manifest, orients, converts to sRGB,
 * caps the longest side and stores the result content-addressed. Bad files go to a
 * quarantine report with a reason; the stage fails only when the manifest itself is unusable.
 */
export function createPrepareImages(deps: { store: ArtifactStore; home: HomeLayout }) {
  const { store, home } = deps;
  return async function prepareImages(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const parsed = parseInputs(prepareInputs, input);
    const spec: PrepareSpec = { ...parsed, concurrency: parsed.concurrency ?? os.availableParallelism() };
    const manifest = await manifestFile(store, parsed.instances, input);
    const total = await countManifestImages(manifest, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    const out = await JsonlWriter.open(path.join(stageDir, 'instances.jsonl'));
    const report = await JsonlWriter.open(path.join(stageDir, 'quarantine.jsonl'));
    const progress = { done: 0, total, unit: 'images' };
    const beat = () => ctx.heartbeat({ progress: { ...progress } });
    beat();
    const timer = setInterval(beat, HEARTBEAT_MS);
    let closed = false;
    try {
      const prepare = (image: ManifestImage) => prepareImage(store, spec, image).finally(() => progress.done++);
      const counts = await processManifest(manifest, spec, ctx.cancellationSignal, prepare, { out, report });
      beat();
      await Promise.all([out.close(), report.close()]);
      closed = true;
      const instances = await store.putFile(out.file, MANIFEST_MEDIA_TYPE);
      const quarantine = await store.putFile(report.file, QUARANTINE_MEDIA_TYPE);
      instances.counts = { instances: counts.instances, images: counts.prepared };
      quarantine.counts = { rows: report.rows, images: counts.quarantined };
      const outputs = { instances, quarantine, counts } as unknown as JsonObject;
      return { outputs, attempt: ctx.info.attempt };
    } finally {
      clearInterval(timer);
      if (!closed) await Promise.all([out.close(), report.close()]).catch(() => undefined);
    }
  };
}

interface Writers {
  out: JsonlWriter;
  report: JsonlWriter;
}

/**
 * Streams the manifest through a bounded window: rows start in order, their images run at
 * most `concurrency` at a time, and rows are written in input order, so the same input
 * always gives the same output bytes.
 */
async function processManifest(
  manifest: string,
  spec: PrepareSpec,
  signal: AbortSignal,
  prepare: (image: ManifestImage) => Promise<ImageOutcome>,
  writers: Writers,
) {
  const limit = semaphore(spec.concurrency);
  const window: Array<Promise<{ row: ManifestRow; outcomes: ImageOutcome[] }>> = [];
  const counts = { instances: 0, images: 0, prepared: 0, quarantined: 0, deduplicated: 0 };
  const seen = new Set<string>();
  const flush = async () => writeRow(await window.shift()!, writers, counts, seen);
  for await (const { value: row } of readJsonl<ManifestRow>(manifest)) {
    throwIfCancelled(signal);
    const images = Array.isArray(row?.images) ? row.images : [];
    const start = (image: ManifestImage) => limit(() => {
      throwIfCancelled(signal);
      return prepare(image);
    });
    const task = Promise.all(images.map(start));
    const pending = task.then((outcomes) => ({ row, outcomes }));
    pending.catch(() => undefined); // awaited in order below; this only keeps Node from calling it unhandled
    window.push(pending);
    if (window.length > spec.concurrency * 2) await flush();
  }
  while (window.length) await flush();
  throwIfCancelled(signal);
  return counts;
}

async function writeRow(
  { row, outcomes }: { row: ManifestRow; outcomes: ImageOutcome[] },
  { out, report }: Writers,
  counts: { instances: number; images: number; prepared: number; quarantined: number; deduplicated: number },
  seen: Set<string>,
): Promise<void> {
  const kept: ManifestImage[] = [];
  for (const [i, outcome] of outcomes.entries()) {
    counts.images++;
    if (outcome.image) {
      counts.prepared++;
      // 64 bits of the digest are plenty to tell a run's images apart and keep the set small.
      const key = outcome.image.sha256!.slice(0, 16);
      if (seen.has(key)) counts.deduplicated++;
      else seen.add(key);
      kept.push(outcome.image);
      continue;
    }
    counts.quarantined++;
    const { path: file, origin } = row.images[i]!;
    await report.write({ instance_id: row.instance_id, path: file, ...(origin ? { origin } : {}), reason: outcome.reason } satisfies QuarantineRow);
  }
  if (kept.length === 0) {
    await report.write({ instance_id: row.instance_id, reason: 'no usable images' } satisfies QuarantineRow);
    return;
  }
  counts.instances++;
  await out.write({ ...row, images: kept });
}

/** Prepares one image; every problem with the file itself becomes a reason, never an exception. */
async function prepareImage(store: ArtifactStore, spec: PrepareSpec, image: ManifestImage): Promise<ImageOutcome> {
  if (typeof image?.path !== 'string' || !image.path) return { reason: 'no path in the manifest' };
  const size = await checkFile(image.path);
  if (typeof size === 'string') return { reason: size };
  const format = await inspect(image.path, spec);
  if (format.reason) return { reason: format.reason };
  let encoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(image.path, { limitInputPixels: spec.maxPixels, failOn: FAIL_ON })
      .autoOrient()
      .toColorspace('srgb')
      .resize({ width: spec.maxSide, height: spec.maxSide, fit: 'inside', withoutEnlargement: true });
    encoded = await encode(pipeline, spec).toBuffer({ resolveWithObject: true });
  } catch {
    return { reason: await whyUndecodable(image.path, format.format, size) };
  }
  const ref = await store.putBytes(encoded.data);
  return { image: { ...image, path: store.resolve(ref), sha256: ref.sha256, width: encoded.info.width, height: encoded.info.height } };
}

/*
 * libvips's error text is not a function of the file: its error buffer is shared by every
 * thread, so concurrent failures bleed into each other's messages, and which tile fails
 * first varies. Reasons are therefore built from the file's own bytes, keeping the report
 * (and its digest) identical from run to run.
 */
async function whyUndecodable(file: string, format: string, size: number): Promise<string> {
  const tail = await readTail(file, size, 16);
  const ends: Record<string, (t: Buffer) => boolean> = {
    jpeg: (t) => t.subarray(-2).equals(Buffer.from([0xff, 0xd9])),
    png: (t) => t.includes('IEND'),
    gif: (t) => t.at(-1) === 0x3b,
  };
  const complete = ends[format];
  if (complete && !complete(tail)) return `truncated or corrupt: the ${format} file ends early (no end marker)`;
  return `truncated or corrupt: the ${format} pixel data does not decode`;
}

async function readTail(file: string, size: number, bytes: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const length = Math.min(bytes, size);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    return buffer;
  } finally {
    await handle.close();
  }
}

/** The file's size, or why it cannot be an image. */
async function checkFile(file: string): Promise<number | string> {
  const stat = await fs.stat(file).catch((err: NodeJS.ErrnoException) => err);
  if (stat instanceof Error) {
    return stat.code === 'ENOENT' || stat.code === 'ENOTDIR' ? 'file not found' : `unreadable file (${stat.code ?? 'error'})`;
  }
  if (!stat.isFile()) return 'not a regular file';
  if (stat.size === 0) return 'empty file (0 bytes)';
  return stat.size;
}

/** Reads only the header, so a pixel bomb is turned away before any pixel is decoded. */
async function inspect(file: string, spec: PrepareSpec): Promise<{ format: string; reason?: string }> {
  let meta: Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false, failOn: FAIL_ON }).metadata();
  } catch (err) {
    // sharp's own fixed text, not libvips's (see whyUndecodable), so it is safe to quote.
    if (/unsupported image format/i.test(messageOf(err))) return { format: '', reason: `not an image: ${messageOf(err)}` };
    return { format: '', reason: 'truncated or corrupt: the header does not parse' };
  }
  const format = meta.format ?? 'unknown';
  if (!RASTER_FORMATS.has(format)) return { format, reason: `not a raster image (${format})` };
  const pages = meta.pages ?? 1;
  if (pages > 1) return { format, reason: format === 'tiff' ? `multi-page image (${pages} pages)` : `animated image (${pages} frames)` };
  const { width = 0, height = 0 } = meta;
  if (width * height > spec.maxPixels) return { format, reason: `too many pixels: ${width} x ${height} exceeds maxPixels ${spec.maxPixels}` };
  return { format };
}

function encode(pipeline: Sharp, spec: PrepareSpec): Sharp {
  switch (spec.format) {
    // JPEG has no alpha; product shots on transparent backgrounds belong on white, not sharp's black.
    case 'jpeg': return pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: spec.quality, mozjpeg: false });
    case 'png': return pipeline.png();
    case 'webp': return pipeline.webp({ quality: spec.quality });
  }
}


/** Runs at most `size` tasks at once; a finishing task hands its slot straight to the next in line. */
function semaphore(size: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active < size) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledFailure('stage cancelled');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
