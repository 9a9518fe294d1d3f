import sharp from 'sharp';

/**
 * Pixels in memory for the synthetic edits. The edits themselves are plain arithmetic on
 * these buffers (no libvips resampling or blurring), so the same image and seed give the
 * same pixels on every host, and the changed area is exactly the recorded region.
 */

/** An 8-bit sRGB image, row-major, three bytes a pixel. */
export interface Raster {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A box inside an image, in pixels; what an edit record calls `region`. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Decodes any raster sharp reads to RGB: oriented, sRGB, transparency flattened on white. */
export async function decodeRgb(file: string): Promise<Raster> {
  const { data, info } = await sharp(file)
    .autoOrient()
    .flatten({ background: '#ffffff' })
    .toColorspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels === 3) return { width: info.width, height: info.height, data: new Uint8Array(data) };
  // A greyscale source can come back with one channel: spread it over three.
  const rgb = new Uint8Array(info.width * info.height * 3);
  for (let i = 0; i < info.width * info.height; i++) rgb.fill(data[i * info.channels]!, i * 3, i * 3 + 3);
  return { width: info.width, height: info.height, data: rgb };
}

export function encodeJpeg(image: Raster, quality: number): Promise<Buffer> {
  const raw = { width: image.width, height: image.height, channels: 3 as const };
  return sharp(Buffer.from(image.data), { raw }).jpeg({ quality, mozjpeg: false }).toBuffer();
}

/** A number in [min, max) from the stream. */
export function uniform(random: () => number, min: number, max: number): number {
  return min + (max - min) * random();
}

/** Rounds recorded parameters, so the record and the pixels agree on the value used. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * A region whose sides are seeded fractions of the image's, centred within ±20% of the
 * image centre: product photos put the object in the middle, and edits belong on it.
 */
export function regionNearCentre(image: Raster, random: () => number, fraction: [number, number]): Region {
  const side = (length: number) => Math.min(length, Math.max(4, Math.round(length * uniform(random, fraction[0], fraction[1]))));
  const width = side(image.width);
  const height = side(image.height);
  const cx = image.width * (0.5 + uniform(random, -0.2, 0.2));
  const cy = image.height * (0.5 + uniform(random, -0.2, 0.2));
  const left = clamp(Math.round(cx - width / 2), 0, image.width - width);
  const top = clamp(Math.round(cy - height / 2), 0, image.height - height);
  return { left, top, width, height };
}

/** Draws `tries` seeded regions and keeps the one `score` likes best (ties: the first). */
export function bestRegion(
  image: Raster, random: () => number, fraction: [number, number], score: (image: Raster, region: Region) => number, tries = 4,
): Region {
  let best = regionNearCentre(image, random, fraction);
  let bestScore = score(image, best);
  for (let i = 1; i < tries; i++) {
    const region = regionNearCentre(image, random, fraction);
    const s = score(image, region);
    if (s > bestScore) [best, bestScore] = [region, s];
  }
  return best;
}

/** Mean chroma (max - min channel) of a region: where a recolor shows. */
export function chromaOf(image: Raster, region: Region): number {
  let sum = 0;
  forEachPixel(region, (x, y) => {
    const i = (y * image.width + x) * 3;
    const d = image.data;
    sum += Math.max(d[i]!, d[i + 1]!, d[i + 2]!) - Math.min(d[i]!, d[i + 1]!, d[i + 2]!);
  });
  return sum / (region.width * region.height);
}

/** Standard deviation of luma in a region: detail that a patch or a warp can change. */
export function detailOf(image: Raster, region: Region): number {
  let sum = 0;
  let squares = 0;
  forEachPixel(region, (x, y) => {
    const l = luma(image, x, y);
    sum += l;
    squares += l * l;
  });
  const n = region.width * region.height;
  return Math.sqrt(Math.max(0, squares / n - (sum / n) ** 2));
}

export function luma(image: Raster, x: number, y: number): number {
  const i = (y * image.width + x) * 3;
  return 0.299 * image.data[i]! + 0.587 * image.data[i + 1]! + 0.114 * image.data[i + 2]!;
}

/** Visits a region's pixels row by row, in image coordinates. */
export function forEachPixel(region: Region, visit: (x: number, y: number, k: number) => void): void {
  let k = 0;
  for (let y = region.top; y < region.top + region.height; y++) {
    for (let x = region.left; x < region.left + region.width; x++) visit(x, y, k++);
  }
}

/** Channel `c` at a fractional position, bilinear, with edges clamped. */
export function sample(image: Raster, x: number, y: number, c: number): number {
  const fx = clamp(x, 0, image.width - 1);
  const fy = clamp(y, 0, image.height - 1);
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const x1 = Math.min(x0 + 1, image.width - 1);
  const y1 = Math.min(y0 + 1, image.height - 1);
  const ax = fx - x0;
  const ay = fy - y0;
  const at = (px: number, py: number) => image.data[(py * image.width + px) * 3 + c]!;
  const top = at(x0, y0) * (1 - ax) + at(x1, y0) * ax;
  const bottom = at(x0, y1) * (1 - ax) + at(x1, y1) * ax;
  return top * (1 - ay) + bottom * ay;
}

export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

/** 0 below `edge0`, 1 above `edge1`, a smooth (C1) ramp between. */
export function smoothstep(edge0: number, edge1: number, value: number): number {
  const t = clamp((value - edge0) / (edge1 - edge0), 0, 1);
  return t * t * (3 - 2 * t);
}
