import { type Raster, type Region, forEachPixel, smoothstep } from './raster.js';

/**
 * Soft masks and the blend that puts an edited region back. A mask is region-sized, one
 * weight in [0, 1] a pixel; it falls to 0 before the region's border, so every changed
 * pixel lies inside the recorded region and no hard seam shows.
 */

/** What an edit proposes: new pixel values for its region and how much of them to use. */
export interface EditProposal {
  region: Region;
  /** Recorded as the edit's `params`: every value that decided the pixels. */
  params: Record<string, unknown>;
  /** Region-sized RGB values (0..255, fractional allowed), row-major. */
  pixels: Float32Array;
  mask: Float32Array;
}

/** An ellipse filling the region, fading out over its outer `feather` (a fraction of the radius). */
export function ellipseMask(region: Region, feather: number): Float32Array {
  const mask = new Float32Array(region.width * region.height);
  const rx = region.width / 2;
  const ry = region.height / 2;
  forEachPixel(region, (x, y, k) => {
    const nx = (x - region.left + 0.5 - rx) / rx;
    const ny = (y - region.top + 0.5 - ry) / ry;
    mask[k] = 1 - smoothstep(1 - feather, 1, Math.sqrt(nx * nx + ny * ny));
  });
  return mask;
}

/** The whole region, fading in over `feather` pixels from each side. */
export function rectMask(region: Region, feather: number): Float32Array {
  const mask = new Float32Array(region.width * region.height);
  forEachPixel(region, (x, y, k) => {
    const dx = Math.min(x - region.left + 0.5, region.left + region.width - x - 0.5);
    const dy = Math.min(y - region.top + 0.5, region.top + region.height - y - 0.5);
    mask[k] = smoothstep(0, feather, Math.min(dx, dy));
  });
  return mask;
}

/** A copy of `base` with the proposal blended in through its mask. */
export function composite(base: Raster, edit: EditProposal): Raster {
  const data = new Uint8Array(base.data);
  forEachPixel(edit.region, (x, y, k) => {
    const m = edit.mask[k]!;
    if (m <= 0) return;
    const i = (y * base.width + x) * 3;
    for (let c = 0; c < 3; c++) {
      const value = base.data[i + c]! * (1 - m) + edit.pixels[k * 3 + c]! * m;
      data[i + c] = Math.round(Math.min(255, Math.max(0, value)));
    }
  });
  return { width: base.width, height: base.height, data };
}

/** Mean absolute change per channel where the mask is on, weighted by it: how visible the edit is. */
export function maskedChange(base: Raster, edited: Raster, edit: EditProposal): number {
  let change = 0;
  let weight = 0;
  forEachPixel(edit.region, (x, y, k) => {
    const m = edit.mask[k]!;
    if (m <= 0) return;
    const i = (y * base.width + x) * 3;
    for (let c = 0; c < 3; c++) change += m * Math.abs(edited.data[i + c]! - base.data[i + c]!);
    weight += 3 * m;
  });
  return weight > 0 ? change / weight : 0;
}
