import { type Raster, type Region, clamp, forEachPixel } from './raster.js';

/**
 * Finding one "part" of a product to recolour: the connected pixels around a seed point
 * whose colour is close to the seed's (a strap, a cap, a pot, a whole monochrome object),
 * as a soft mask. Following the part's own edges is what makes a recolour look like
 * another colourway rather than paint sprayed on the photo.
 */

/** Luma and the two chroma differences of a pixel (BT.601, 0..255 scale). */
export function ycc(image: Raster, x: number, y: number): [number, number, number] {
  const i = (y * image.width + x) * 3;
  const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
  const luma = 0.299 * r + 0.587 * g + 0.114 * b;
  return [luma, 0.564 * (b - luma), 0.713 * (r - luma)];
}

/** Mean colour of the 5 x 5 pixels around a point: the part's key colour. */
export function keyColor(image: Raster, x: number, y: number): [number, number, number] {
  const sum = [0, 0, 0];
  let n = 0;
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const px = clamp(x + dx, 0, image.width - 1);
      const py = clamp(y + dy, 0, image.height - 1);
      ycc(image, px, py).forEach((v, c) => (sum[c]! += v));
      n++;
    }
  }
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}

/**
 * Chroma divided by luma: a shaded side of a part has less chroma but the same ratio, so
 * parts are told apart by colour, not by their lighting.
 */
function chromaticity(luma: number, cb: number, cr: number): [number, number] {
  const scale = 128 / Math.max(luma, 24);
  return [cb * scale, cr * scale];
}

/**
 * Pixels 4-connected to the seed whose colour is within tolerance of the key, inside `box`.
 * Colours are compared after a light blur, so texture and JPEG noise do not fray the edge.
 */
export function growPart(image: Raster, seed: { x: number; y: number }, box: Region): { inside: Uint8Array; area: number } {
  const key = keyColor(image, seed.x, seed.y);
  const [kb, kr] = chromaticity(...key);
  const grey = Math.hypot(key[1], key[2]) < 12;
  const tolerance = Math.max(12, 0.45 * Math.hypot(kb, kr));
  // Grey parts have only luma to go by, so luma decides there; colours may shade freely.
  const lumaTolerance = grey ? 28 : 110;
  const [l, b, r] = smoothedColors(image, box) as [Float32Array, Float32Array, Float32Array];
  const near = (k: number) => {
    const [pb, pr] = chromaticity(l[k]!, b[k]!, r[k]!);
    return Math.abs(l[k]! - key[0]) <= lumaTolerance && Math.hypot(pb - kb, pr - kr) <= tolerance;
  };
  const inside = new Uint8Array(box.width * box.height);
  const stack = [seed.x - box.left + (seed.y - box.top) * box.width];
  inside[stack[0]!] = 1;
  let area = 0;
  while (stack.length) {
    const k = stack.pop()!;
    area++;
    const bx = k % box.width;
    const by = (k - bx) / box.width;
    for (const [nx, ny] of [[bx - 1, by], [bx + 1, by], [bx, by - 1], [bx, by + 1]] as const) {
      if (nx < 0 || ny < 0 || nx >= box.width || ny >= box.height) continue;
      const n = ny * box.width + nx;
      if (inside[n] || !near(n)) continue;
      inside[n] = 1;
      stack.push(n);
    }
  }
  return { inside, area };
}

/** Luma, Cb and Cr of the box's pixels, each box-blurred with radius 2. */
function smoothedColors(image: Raster, box: Region): Float32Array[] {
  const planes = [0, 1, 2].map(() => new Float32Array(box.width * box.height));
  forEachPixel(box, (x, y, k) => ycc(image, x, y).forEach((v, c) => (planes[c]![k] = v)));
  return planes.map((plane) => boxBlur(boxBlur(plane, box.width, box.height, 2, 1, box.width), box.height, box.width, 2, box.width, 1));
}

/** A binary box-sized mask blurred by two box passes of `radius` each way (close to a Gaussian). */
export function blurMask(inside: Uint8Array, width: number, height: number, radius: number): Float32Array {
  let mask: Float32Array = Float32Array.from(inside);
  for (let pass = 0; pass < 2; pass++) {
    mask = boxBlur(mask, width, height, radius, 1, width);
    mask = boxBlur(mask, height, width, radius, width, 1);
  }
  return mask;
}

/** One separable pass: `length` samples along `step`, repeated `lines` times `lineStep` apart. */
function boxBlur(src: Float32Array, length: number, lines: number, radius: number, step: number, lineStep: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    for (let i = 0; i < length; i++) {
      let sum = 0;
      for (let d = -radius; d <= radius; d++) sum += src[base + clamp(i + d, 0, length - 1) * step]!;
      out[base + i * step] = sum / (2 * radius + 1);
    }
  }
  return out;
}

/** The smallest region holding every non-zero weight of a box-sized mask, and the mask cropped to it. */
export function cropToMask(mask: Float32Array, box: Region): { region: Region; mask: Float32Array } {
  let [x0, y0, x1, y1] = [box.width, box.height, -1, -1];
  forEachPixel({ left: 0, top: 0, width: box.width, height: box.height }, (x, y, k) => {
    if (mask[k]! <= 0) return;
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  });
  if (x1 < 0) return { region: { left: box.left, top: box.top, width: 1, height: 1 }, mask: new Float32Array(1) };
  const region = { left: box.left + x0, top: box.top + y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
  const cropped = new Float32Array(region.width * region.height);
  forEachPixel(region, (x, y, k) => { cropped[k] = mask[(y - box.top) * box.width + (x - box.left)]!; });
  return { region, mask: cropped };
}
