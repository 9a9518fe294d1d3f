import { CancelledFailure } from '@temporalio/activity';
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import type { z } from 'zod';
import type { prepareInputs } from '../../engine/kinds/images.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { ManifestImage } from '../data/manifest.js';
import { decodeBytes, type DecodeHeader } from './decode-memory.js';
import { IMAGE_MEMORY_ENV, MiB, type MemoryBudget } from './memory-budget.js';
import { checkFile, digestMismatch, readWhole, whyUndecodable } from './source-bytes.js';

export type PrepareSpec = z.infer<typeof prepareInputs> & { concurrency: number };

export type ImageOutcome =
  | { image: ManifestImage; reservedBytes: number; reason?: undefined }
  | { image?: undefined; reason: string };

export interface ImageContext {
  store: ArtifactStore;
  spec: PrepareSpec;
  /** Shared by every decode of the worker process. */
  budget: MemoryBudget;
  /** libvips's worker threads (sharp.concurrency()), which the memory estimate scales with. */
  threads: number;
  signal: AbortSignal;
}

/** Rasters only: libvips would also render SVG and PDF, which are not photos and may reference other files. */
const RASTER_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);
/*
 * 'warning' is the only level that rejects a JPEG whose middle is garbage ('truncated' and
 * 'error' decode it with grey blocks); grey blocks in training data cost more than the few
 * slightly-off but viewable files this also turns away.
 */
const FAIL_ON = 'warning';

/**
 * Prepares one image; every problem with the file itself becomes a reason, never an
 * exception. The header is read first, from the path, only to size the memory reservation;
 * the file is then read whole under that reservation and everything else, the header
 * included, is checked again on those bytes.
 */
export async function prepareImage(ctx: ImageContext, image: ManifestImage): Promise<ImageOutcome> {
  const { spec } = ctx;
  if (typeof image?.path !== 'string' || !image.path) return { reason: 'no path in the manifest' };
  const size = await checkFile(image.path, spec.maxFileMB);
  if (typeof size === 'string') return { reason: size };
  const peek = await inspect(image.path, spec);
  if (peek.reason !== undefined) return { reason: peek.reason };
  const need = size + decodeBytes(peek.header, spec, ctx.threads);
  if (need > spec.memoryMB * MiB) return { reason: needsMoreMemory(peek.header, need, spec.memoryMB) };
  try {
    return await ctx.budget.use(need, () => decodeChecked(ctx, image, size, peek.header, need), ctx.signal);
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledFailure('stage cancelled');
    throw err;
  }
}

async function decodeChecked(ctx: ImageContext, image: ManifestImage, size: number, peeked: DecodeHeader, need: number): Promise<ImageOutcome> {
  // prepareImage has checked the path is there.
  const bytes = await readWhole(image.path!, size);
  if (typeof bytes === 'string') return { reason: bytes };
  const changed = digestMismatch(bytes, image.source_sha256);
  if (changed) return { reason: changed };
  const header = await inspect(bytes, ctx.spec);
  if (header.reason !== undefined) return { reason: header.reason };
  if (!sameHeader(header.header, peeked)) return { reason: 'changed while images/prepare read it (its header moved): run the pipeline again' };
  let encoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(bytes, { limitInputPixels: ctx.spec.maxPixels, failOn: FAIL_ON })
      .autoOrient()
      .toColorspace('srgb')
      .resize({ width: ctx.spec.maxSide, height: ctx.spec.maxSide, fit: 'inside', withoutEnlargement: true });
    encoded = await encode(pipeline, ctx.spec).toBuffer({ resolveWithObject: true });
  } catch {
    return { reason: whyUndecodable(bytes, header.header.format) };
  }
  const ref = await ctx.store.putBytes(encoded.data);
  // The host path stays behind: downstream stages read the image by digest, on any host.
  const { path: _source, ...rest } = image;
  const prepared = { ...rest, sha256: ref.sha256, width: encoded.info.width, height: encoded.info.height };
  return { image: prepared, reservedBytes: need };
}

function needsMoreMemory(h: DecodeHeader, need: number, memoryMB: number): string {
  const bits = h.depth === 'ushort' ? 16 : h.depth === 'uchar' || !h.depth ? 8 : h.depth;
  return (
    `needs about ${Math.ceil(need / MiB)} MB to decode (${h.width} x ${h.height}, ${h.channels} channel${h.channels === 1 ? '' : 's'}, ${bits}-bit ${h.format}), ` +
    `more than memoryMB ${memoryMB}: raise memoryMB (and the worker's ${IMAGE_MEMORY_ENV}) to prepare it`
  );
}

function sameHeader(a: DecodeHeader, b: DecodeHeader): boolean {
  return a.format === b.format && a.width === b.width && a.height === b.height && a.channels === b.channels &&
    a.depth === b.depth && a.isProgressive === b.isProgressive && a.hasAlpha === b.hasAlpha;
}

type Inspected = { header: DecodeHeader; reason?: undefined } | { header?: undefined; reason: string };

/** Reads only the header, so a pixel bomb is turned away before any pixel is decoded. */
async function inspect(input: string | Buffer, spec: PrepareSpec): Promise<Inspected> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false, failOn: FAIL_ON }).metadata();
  } catch (err) {
    // sharp's own fixed text, not libvips's (see whyUndecodable), so it is safe to quote.
    const message = err instanceof Error ? err.message : String(err);
    if (/unsupported image format/i.test(message)) return { reason: `not an image: ${message}` };
    return { reason: 'truncated or corrupt: the header does not parse' };
  }
  const format = meta.format ?? 'unknown';
  if (!RASTER_FORMATS.has(format)) return { reason: `not a raster image (${format})` };
  const pages = meta.pages ?? 1;
  if (pages > 1) return { reason: format === 'tiff' ? `multi-page image (${pages} pages)` : `animated image (${pages} frames)` };
  const { width = 0, height = 0 } = meta;
  if (width * height > spec.maxPixels) return { reason: `too many pixels: ${width} x ${height} exceeds maxPixels ${spec.maxPixels}` };
  const header = { format, width, height, channels: meta.channels ?? 4, depth: meta.depth, isProgressive: meta.isProgressive, hasAlpha: meta.hasAlpha };
  return { header };
}

function encode(pipeline: Sharp, spec: PrepareSpec): Sharp {
  switch (spec.format) {
    // JPEG has no alpha; product shots on transparent backgrounds belong on white, not sharp's black.
    case 'jpeg': return pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: spec.quality, mozjpeg: false });
    case 'png': return pipeline.png();
    case 'webp': return pipeline.webp({ quality: spec.quality });
  }
}
