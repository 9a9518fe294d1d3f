import { type EditProposal, ellipseMask, rectMask } from './mask.js';
import { type Raster, type Region, bestRegion, clamp, detailOf, forEachPixel, luma, round, uniform } from './raster.js';

/*
 * Patch: a logo-like detail removed, swapped or added. A removal goes where the image has
 * detail inside a calm border (a print on a surface); a mark goes where there is detail (on
 * the object, not the empty background), since a patch on a blank wall tells no instances apart.
 *  - remove: covers the detail with what surrounds it. On a plain surface (a smooth border)
 *    that is a smooth fill matching the border; on a textured one a smooth fill would show as
 *    a smudge, so a same-sized patch of the same photo whose border matches best is pasted;
 *  - mark: draws a small disc, bar or stripes in a colour that contrasts with the area (an added logo).
 */

const MARKS = ['disc', 'bar', 'stripes'] as const;
/** Seeded source positions a copy chooses from. */
const COPY_TRIES = 24;
/** Mean step between neighbouring border pixels above which a surface counts as textured. */
const TEXTURED = 6;

export function patch(image: Raster, random: () => number): EditProposal {
  if (random() < 1 / 3) return mark(image, random, bestRegion(image, random, [0.06, 0.12], detailOf));
  const region = bestRegion(image, random, [0.1, 0.2], logoLikeness, 6);
  return borderRoughness(image, region) > TEXTURED ? copy(image, random, region) : fill(image, region);
}

/** Detail inside, calm around: how much a region looks like a print on a surface. */
function logoLikeness(image: Raster, region: Region): number {
  return detailOf(image, region) - 2 * borderRoughness(image, region);
}

/** Mean absolute step between neighbouring pixels walking round the region's border. */
function borderRoughness(image: Raster, region: Region): number {
  const { left, top, width: w, height: h } = region;
  const ring: Array<[number, number]> = [];
  for (let x = left; x < left + w; x++) ring.push([x, top]);
  for (let y = top + 1; y < top + h; y++) ring.push([left + w - 1, y]);
  for (let x = left + w - 2; x >= left; x--) ring.push([x, top + h - 1]);
  for (let y = top + h - 2; y > top; y--) ring.push([left, y]);
  let sum = 0;
  for (let k = 1; k < ring.length; k++) sum += Math.abs(luma(image, ...ring[k]!) - luma(image, ...ring[k - 1]!));
  return sum / Math.max(1, ring.length - 1);
}

function feather(region: Region): number {
  return Math.max(2, Math.round(Math.min(region.width, region.height) * 0.25));
}

function copy(image: Raster, random: () => number, region: Region): EditProposal {
  // The seeded position whose border best matches the region's, so the paste reads as the
  // surface around it (a logo cloned away) rather than a pasted square.
  let from = { left: 0, top: 0 };
  let lowest = Infinity;
  for (let i = 0; i < COPY_TRIES; i++) {
    const left = Math.floor(random() * (image.width - region.width + 1));
    const top = Math.floor(random() * (image.height - region.height + 1));
    const overlaps = Math.abs(left - region.left) < region.width && Math.abs(top - region.top) < region.height;
    const cost = seamCost(image, region, left, top) + (overlaps ? 1000 : 0);
    if (cost < lowest) [from, lowest] = [{ left, top }, cost];
  }
  const pixels = new Float32Array(region.width * region.height * 3);
  forEachPixel(region, (x, y, k) => {
    const i = ((y - region.top + from.top) * image.width + (x - region.left + from.left)) * 3;
    pixels.set(image.data.subarray(i, i + 3), k * 3);
  });
  const soft = feather(region);
  return { region, params: { mode: 'copy', from, feather: soft }, pixels, mask: rectMask(region, soft) };
}

/** Mean absolute difference between the region's border pixels and those of the same-sized box at (left, top). */
function seamCost(image: Raster, region: Region, left: number, top: number): number {
  let sum = 0;
  let n = 0;
  forEachPixel(region, (x, y) => {
    const border = x === region.left || y === region.top || x === region.left + region.width - 1 || y === region.top + region.height - 1;
    if (!border) return;
    const a = (y * image.width + x) * 3;
    const b = ((y - region.top + top) * image.width + (x - region.left + left)) * 3;
    for (let c = 0; c < 3; c++) sum += Math.abs(image.data[a + c]! - image.data[b + c]!);
    n += 3;
  });
  return sum / n;
}

/**
 * A Coons patch over the region's smoothed border: it follows the border where the region
 * meets the rest of the image and varies smoothly inside, like a plain surface. The border
 * is smoothed over a sixth of the region's side, so an edge crossing it fades into a
 * gradient instead of being drawn through the fill as a streak.
 */
function fill(image: Raster, region: Region): EditProposal {
  const { left, top, width: w, height: h } = region;
  const radius = Math.max(2, Math.round(Math.min(w, h) / 6));
  const px = (x: number, y: number, c: number) => image.data[(y * image.width + x) * 3 + c]!;
  // Per channel: the left, right, top and bottom border lines, smoothed along their length.
  const borders = [0, 1, 2].map((c) => ({
    left: smoothLine(h, (t) => px(left, top + t, c), radius),
    right: smoothLine(h, (t) => px(left + w - 1, top + t, c), radius),
    top: smoothLine(w, (t) => px(left + t, top, c), radius),
    bottom: smoothLine(w, (t) => px(left + t, top + h - 1, c), radius),
  }));
  const pixels = new Float32Array(w * h * 3);
  forEachPixel(region, (x, y, k) => {
    const [i, j] = [x - left, y - top];
    const u = w > 1 ? i / (w - 1) : 0;
    const v = h > 1 ? j / (h - 1) : 0;
    for (let c = 0; c < 3; c++) {
      const b = borders[c]!;
      const corners = (1 - u) * (1 - v) * b.top[0]! + u * (1 - v) * b.top[w - 1]! + (1 - u) * v * b.bottom[0]! + u * v * b.bottom[w - 1]!;
      pixels[k * 3 + c] = (1 - u) * b.left[j]! + u * b.right[j]! + (1 - v) * b.top[i]! + v * b.bottom[i]! - corners;
    }
  });
  const soft = feather(region);
  return { region, params: { mode: 'fill', feather: soft }, pixels, mask: rectMask(region, soft) };
}

/** A line of `length` values averaged over a window of ±radius (shrunk at the ends). */
function smoothLine(length: number, value: (t: number) => number, radius: number): Float32Array {
  const out = new Float32Array(length);
  for (let t = 0; t < length; t++) {
    let [sum, n] = [0, 0];
    for (let d = Math.max(0, t - radius); d <= Math.min(length - 1, t + radius); d++) [sum, n] = [sum + value(d), n + 1];
    out[t] = sum / n;
  }
  return out;
}

function mark(image: Raster, random: () => number, region: Region): EditProposal {
  const shape = MARKS[Math.floor(random() * MARKS.length)]!;
  const color = contrastingColor(image, region, random);
  const opacity = round(uniform(random, 0.8, 0.95));
  const period = Math.max(4, Math.round(Math.min(region.width, region.height) / uniform(random, 3, 5)));
  const axis = random() < 0.5 ? 'x' : 'y';
  const coverage = shape === 'disc' ? discCoverage(region) : rectMask(region, 1.5);
  if (shape === 'stripes') {
    forEachPixel(region, (x, y, k) => {
      const t = ((axis === 'x' ? x - region.left : y - region.top) + 0.5) % period;
      coverage[k] = coverage[k]! * clamp(period / 4 - Math.abs(t - period / 4) + 0.5, 0, 1);
    });
  }
  const pixels = new Float32Array(region.width * region.height * 3);
  for (let k = 0; k < region.width * region.height; k++) pixels.set(color, k * 3);
  const mask = coverage.map((m) => m * opacity);
  const params = { mode: 'mark', mark: shape, color, opacity, ...(shape === 'stripes' ? { axis, period } : {}) };
  return { region, params, pixels, mask };
}

/** An antialiased disc: full inside, fading over the last 1.5 pixels of its radius. */
function discCoverage(region: Region): Float32Array {
  const radius = Math.min(region.width, region.height) / 2;
  return ellipseMask(region, Math.min(1, 1.5 / radius));
}

/** A seeded colour whose luma is far from the region's mean: dark marks on light parts, light on dark. */
function contrastingColor(image: Raster, region: Region, random: () => number): number[] {
  let sum = 0;
  forEachPixel(region, (x, y) => { sum += luma(image, x, y); });
  const mean = sum / (region.width * region.height);
  const y = mean > 128 ? uniform(random, 25, 80) : uniform(random, 175, 230);
  const turn = uniform(random, 0, 2 * Math.PI);
  const chroma = uniform(random, 0, 45);
  const cb = chroma * Math.cos(turn);
  const cr = chroma * Math.sin(turn);
  return [y + 1.403 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.773 * cb].map((v) => Math.round(clamp(v, 0, 255)));
}
