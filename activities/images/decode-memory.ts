/**
 * How much memory preparing one image takes, estimated from its header alone, so a decode
 * can reserve it before it starts. The figures were measured (peak RSS of a fresh process,
 * /proc/self/status VmHWM) with sharp 0.35.5 / libvips 8.18.7 on the pipeline prepare runs
 * (autoOrient, toColorspace, resize inside, flatten, encode), and each term is an upper
 * envelope of those measurements; `npm run bench -- images` checks them again.
 *
 * Where the memory goes: libvips streams an image in full-width strips, so most of it is
 * (bytes of one input row) x (rows in flight). Rows in flight depend on the height, not the
 * width: a resize to a few output rows holds a reduce window of many full-width rows, in
 * wider intermediate formats, which makes a 9,750,000 x 4 strip (39 MP, under the pixel cap)
 * cost 1.1 GB where a 6000 x 6000 photo costs 40 MB. Some decoders hold the whole frame
 * (GIF, WebP, HEIF/AVIF, interlaced PNG, progressive JPEG, single-strip TIFF), and the encoder
 * and EXIF rotation hold the whole output. JPEG and WebP decode already shrunk when they can.
 */

export interface DecodeHeader {
  format: string;
  width: number;
  height: number;
  channels: number;
  /** libvips band format: uchar, ushort, float ... */
  depth?: string;
  /** Interlaced PNG or progressive JPEG. */
  isProgressive?: boolean;
  hasAlpha?: boolean;
}

export interface EncodeShape {
  maxSide: number;
  format: 'jpeg' | 'png' | 'webp';
}

const MiB = 1 << 20;
/** libvips, sharp and the pipeline's own buffers for any image, however small. */
const FIXED = 8 * MiB;
/** Measurements vary by a few percent from run to run; this covers them and the envelope's corners. */
const MARGIN = 1.2;
/**
 * Each extra libvips worker thread computes its own strip: about +20% each measured on
 * 2000 rows and more, nothing on a few rows (one strip is all there is). Ramped between.
 */
const PER_EXTRA_THREAD = 0.25;
const THREADS_FROM_ROWS = 64;
const THREADS_FULL_ROWS = 2048;

/*
 * Full-width input rows held at once, by image height (the worst of maxSide 64, 512 and
 * 2048, grey, RGB and RGBA, output buffers taken out). Linear in between; past the last
 * point they grow with the height.
 */
const ROWS_IN_FLIGHT: ReadonlyArray<readonly [height: number, rows: number]> = [
  [1, 11], [2, 35], [4, 125], [16, 230], [64, 280], [256, 500], [512, 900], [1024, 1130], [2048, 1750], [6245, 2700],
];

const BYTES_PER_SAMPLE: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

export function rowsInFlight(height: number): number {
  const table = ROWS_IN_FLIGHT;
  const last = table[table.length - 1]!;
  if (height >= last[0]) return (last[1] * height) / last[0];
  let i = 1;
  while (table[i]![0] < height) i++;
  const [h0, r0] = table[i - 1]!;
  const [h1, r1] = table[i]!;
  return height <= h0 ? r0 : r0 + ((r1 - r0) * (height - h0)) / (h1 - h0);
}

/** Bytes held for the whole frame by decoders that do not stream (`loaded`: the frame they deliver). */
function wholeFrameBytes(h: DecodeHeader, loaded: { width: number; height: number }, sample: number): number {
  const pixels = h.width * h.height;
  switch (h.format) {
    case 'gif': return pixels * 4 * 2; // RGBA canvas plus the previous frame kept for disposal
    case 'webp': return loaded.width * loaded.height * 4;
    case 'heif': case 'avif': return pixels * 24 * sample; // YUV planes, the codec's references, RGB out: 19-24 B/px measured
    case 'tiff': return pixels * h.channels * sample; // a single-strip TIFF is read as one strip
    case 'png': return h.isProgressive ? pixels * h.channels * sample : 0; // Adam7 needs every pass
    case 'jpeg': return h.isProgressive ? pixels * h.channels * 2 : 0; // every DCT coefficient, 2 bytes each
    default: return pixels * h.channels * sample;
  }
}

/**
 * The size the decoder delivers. sharp has JPEG decoders shrink by 2, 4 or 8 while decoding
 * when the resize allows (one step less when the shrink is exactly that factor, as sharp
 * does against libjpeg's rounding), and WebP decoders scale to the output size (not with
 * alpha, measured: those decode whole).
 */
export function loadedSize(h: DecodeHeader, maxSide: number): { width: number; height: number } {
  const shrink = Math.max(h.width, h.height) / maxSide;
  // A four-channel JPEG is CMYK, and measured more than its shrunk size: taken as decoded whole.
  if (h.format === 'jpeg' && h.channels < 4) {
    let factor = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
    if (factor > 1 && Math.floor(shrink) === factor) factor /= 2;
    return { width: Math.ceil(h.width / factor), height: Math.ceil(h.height / factor) };
  }
  if (h.format === 'webp' && !h.hasAlpha) return outputSize(h.width, h.height, maxSide);
  return h;
}

/** The prepared image's size: fit inside maxSide, never enlarged. */
export function outputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const factor = Math.max(width, height) / maxSide;
  if (factor <= 1) return { width, height };
  return { width: Math.max(1, Math.round(width / factor)), height: Math.max(1, Math.round(height / factor)) };
}

/**
 * Bytes one image needs from its header to its encoded output, file bytes not included.
 * `threads` is libvips's worker thread count (sharp.concurrency()).
 */
export function decodeBytes(h: DecodeHeader, out: EncodeShape, threads = 1): number {
  const sample = BYTES_PER_SAMPLE[h.depth ?? 'uchar'] ?? 8;
  const loaded = loadedSize(h, out.maxSide);
  const rowBytes = loaded.width * h.channels * sample;
  const share = Math.min(1, Math.max(0, (loaded.height - THREADS_FROM_ROWS) / (THREADS_FULL_ROWS - THREADS_FROM_ROWS)));
  const streamed = rowBytes * rowsInFlight(loaded.height) * (1 + PER_EXTRA_THREAD * share * Math.max(0, threads - 1));
  const o = outputSize(h.width, h.height, out.maxSide);
  // JPEG keeps all coefficients to optimise its Huffman tables; WebP with alpha measured 36 B/px.
  const perOutputPixel = out.format === 'webp' && h.hasAlpha ? 40 : 10;
  const output = o.width * o.height * perOutputPixel;
  return Math.ceil((FIXED + streamed + wholeFrameBytes(h, loaded, sample) + output) * MARGIN);
}
