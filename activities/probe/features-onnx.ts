import fs from 'node:fs/promises';
import sharp from 'sharp';
import { CancelledFailure, Context } from '@temporalio/activity';
import type * as ort from 'onnxruntime-node';
import { loadPreprocess, openSession, runBatch, type PreprocessSpec } from '../embed/embed-images.js';
import { decodePixels, pixelsToInput } from '../embed/pixels.js';
import { invalidInput } from '../failures.js';
import type { StageActivityInput } from '../stage-io.js';
import type { ProbeImage } from './layouts.js';

/** An ONNX encoder opened once for a stage: embed/images' preprocessing spec, session and inference call. */
export interface OnnxEncoder {
  pre: PreprocessSpec;
  session: ort.InferenceSession;
  model: string;
  batchSize: number;
}

export async function openOnnxEncoder(spec: { model: string; preprocess?: string; threads?: number; batchSize: number }, input: StageActivityInput): Promise<OnnxEncoder> {
  const pre = await loadPreprocess(spec, input);
  return { pre, session: await openSession(spec, pre, input), model: spec.model, batchSize: spec.batchSize };
}

/**
 * Every image's features, in order, written to `out` (raw little-endian float32 rows, not
 * normalised: the probe normalises). The next batch decodes while the current one runs.
 */
export async function embedWithOnnx(encoder: OnnxEncoder, images: readonly ProbeImage[], out: string, input: StageActivityInput, where: string, onBatch: (done: number) => void): Promise<number> {
  const { pre, batchSize } = encoder;
  const file = await fs.open(`${out}.partial`, 'w');
  try {
    const decode = (start: number) => Promise.all(images.slice(start, start + batchSize).map((image) => pixelsOf(image, pre.size, where))).then((px) => pixelsToInput(px, pre));
    let next = images.length ? decode(0) : undefined;
    for (let start = 0; start < images.length; start += batchSize) {
      if (Context.current().cancellationSignal.aborted) throw new CancelledFailure('stage cancelled');
      const batch = await next!;
      next = start + batchSize < images.length ? decode(start + batchSize) : undefined;
      next?.catch(() => undefined); // awaited on the next turn; this keeps Node from calling it unhandled meanwhile
      const n = Math.min(batchSize, images.length - start);
      const rows = await runBatch(encoder.session, pre, { model: encoder.model, normalize: false }, new Array(n), batch, input);
      await file.write(Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength));
      onBatch(start + n);
    }
  } finally {
    await file.close();
  }
  await fs.rename(`${out}.partial`, out);
  return pre.dims;
}

async function pixelsOf(image: ProbeImage, size: number, where: string): Promise<Buffer> {
  if ('file' in image) {
    try {
      return await decodePixels(image.file, size);
    } catch (err) {
      throw invalidInput(`${where}: cannot read the image ${image.file} (${(err as Error).message}); the dataset's index lists it, so restore the file or fix the index`);
    }
  }
  const bytes = image.size * image.size * 3;
  const handle = await fs.open(image.rgb, 'r');
  try {
    const raw = Buffer.alloc(bytes);
    await handle.read(raw, 0, bytes, image.index * bytes);
    return await sharp(raw, { raw: { width: image.size, height: image.size, channels: 3 } }).resize(size, size, { fit: 'fill' }).raw().toBuffer();
  } finally {
    await handle.close();
  }
}
