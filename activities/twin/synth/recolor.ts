import { type EditProposal, ellipseMask } from './mask.js';
import { blurMask, cropToMask, growPart, keyColor } from './part.js';
import { type Raster, type Region, clamp, forEachPixel, round, smoothstep, uniform } from './raster.js';

/*
 * Recolor: the same product in another colourway, on one part. The part is grown from a
 * seeded point near the centre (see part.ts); its colours turn in the YCbCr chroma plane,
 * which keeps each pixel's luma (shading and texture stay), and saturation scales. Grey
 * parts have no hue to turn, so they get a faint seeded tint instead, strongest in the
 * mid-tones: a white background or a black outline stays as it was.
 */

/** Seed points tried; the most colourful goes first. */
const SEEDS = 6;
/** A part smaller than this share of the image is too small to read as a colourway. */
const MIN_PART = 0.01;
/** The part may reach this share of each side around its seed; beyond, it fades out. */
const REACH = 0.7;
const FADE = 0.35;
const EDGE_BLUR = 2;

export function recolor(image: Raster, random: () => number): EditProposal {
  const part = findPart(image, random);
  const params = {
    at: part.seed,
    hue: (random() < 0.5 ? -1 : 1) * Math.round(uniform(random, 30, 120)),
    saturation: round(uniform(random, 0.85, 1.2)),
    tint: { hue: Math.round(uniform(random, 0, 360)), strength: round(uniform(random, 14, 26), 1) },
  };
  const turn = (params.hue * Math.PI) / 180;
  const [cos, sin] = [Math.cos(turn), Math.sin(turn)];
  const tintTurn = (params.tint.hue * Math.PI) / 180;
  const tint = [params.tint.strength * Math.cos(tintTurn), params.tint.strength * Math.sin(tintTurn)];
  const pixels = new Float32Array(part.region.width * part.region.height * 3);
  forEachPixel(part.region, (x, y, k) => {
    const i = (y * image.width + x) * 3;
    const [r, g, b] = [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
    const luma = 0.299 * r + 0.587 * g + 0.114 * b;
    const cb = 0.564 * (b - luma);
    const cr = 0.713 * (r - luma);
    const grey = 1 - smoothstep(4, 20, Math.sqrt(cb * cb + cr * cr));
    const midtone = 4 * (luma / 255) * (1 - luma / 255);
    const cb2 = params.saturation * (cb * cos - cr * sin) + grey * midtone * tint[0]!;
    const cr2 = params.saturation * (cb * sin + cr * cos) + grey * midtone * tint[1]!;
    pixels[k * 3] = luma + 1.403 * cr2;
    pixels[k * 3 + 1] = luma - 0.344 * cb2 - 0.714 * cr2;
    pixels[k * 3 + 2] = luma + 1.773 * cb2;
  });
  return { region: part.region, params, pixels, mask: part.mask };
}

/** The part around the most colourful seed point whose part is big enough (else the biggest part found). */
function findPart(image: Raster, random: () => number): { seed: { x: number; y: number }; region: Region; mask: Float32Array } {
  const seeds = Array.from({ length: SEEDS }, () => ({
    x: clamp(Math.round(image.width * (0.5 + uniform(random, -0.2, 0.2))), 0, image.width - 1),
    y: clamp(Math.round(image.height * (0.5 + uniform(random, -0.2, 0.2))), 0, image.height - 1),
  }));
  const chroma = seeds.map(({ x, y }) => Math.hypot(...keyColor(image, x, y).slice(1)));
  const order = seeds.map((_, i) => i).sort((a, b) => chroma[b]! - chroma[a]! || a - b);
  let best: { seed: { x: number; y: number }; box: Region; inside: Uint8Array; area: number } | undefined;
  for (const i of order) {
    const seed = seeds[i]!;
    const box = boxAround(image, seed);
    const grown = growPart(image, seed, box);
    if (!best || grown.area > best.area) best = { seed, box, ...grown };
    if (grown.area >= MIN_PART * image.width * image.height) break;
  }
  const { seed, box, inside } = best!;
  const fade = ellipseMask(box, FADE);
  const soft = blurMask(inside, box.width, box.height, EDGE_BLUR).map((m, k) => m * fade[k]!);
  return { seed, ...cropToMask(soft, box) };
}

/** The box the part may grow in: REACH of each side, centred on the seed as far as the image allows. */
function boxAround(image: Raster, seed: { x: number; y: number }): Region {
  const width = Math.max(1, Math.round(image.width * REACH));
  const height = Math.max(1, Math.round(image.height * REACH));
  const left = clamp(seed.x - Math.floor(width / 2), 0, image.width - width);
  const top = clamp(seed.y - Math.floor(height / 2), 0, image.height - height);
  return { left, top, width, height };
}
