import { type EditProposal, ellipseMask } from './mask.js';
import { type Raster, type Region, bestRegion, detailOf, forEachPixel, round, sample, uniform } from './raster.js';

/*
 * Shape: one part a little wider, taller, narrower or flipped.
 *  - stretch: a local warp along one axis inside an ellipse, strongest at its centre and
 *    fading to none at its edge, so the part changes proportion without a seam;
 *  - mirror: the part flipped left to right, blended back with a soft ellipse. Only left to
 *    right: photos are lit from above, and a part flipped upside down shows it.
 */

const MIRROR_FEATHER = 0.3;

export function shape(image: Raster, random: () => number): EditProposal {
  const mode = random() < 0.65 ? 'stretch' : 'mirror';
  const region = bestRegion(image, random, [0.22, 0.38], detailOf);
  if (mode === 'mirror') return mirror(image, region);
  return stretch(image, random, region, random() < 0.5 ? 'x' : 'y');
}

/**
 * Each pixel samples the source nearer to (factor > 1: stretch) or farther from (< 1:
 * squash) the centre along `axis`, by a weight (1 - d^2)^2 of its elliptical distance d.
 */
function stretch(image: Raster, random: () => number, region: Region, axis: 'x' | 'y'): EditProposal {
  const factor = round((random() < 0.5 ? 1 : -1) * uniform(random, 0.2, 0.35) + 1);
  const rx = region.width / 2;
  const ry = region.height / 2;
  const cx = region.left + rx;
  const cy = region.top + ry;
  const pixels = new Float32Array(region.width * region.height * 3);
  const mask = new Float32Array(region.width * region.height);
  forEachPixel(region, (x, y, k) => {
    const dx = x + 0.5 - cx;
    const dy = y + 0.5 - cy;
    const d2 = (dx / rx) ** 2 + (dy / ry) ** 2;
    if (d2 >= 1) return;
    const scale = 1 + (factor - 1) * (1 - d2) ** 2;
    const sx = axis === 'x' ? cx + dx / scale - 0.5 : x;
    const sy = axis === 'y' ? cy + dy / scale - 0.5 : y;
    for (let c = 0; c < 3; c++) pixels[k * 3 + c] = sample(image, sx, sy, c);
    mask[k] = 1;
  });
  return { region, params: { mode: 'stretch', axis, factor }, pixels, mask };
}

function mirror(image: Raster, region: Region): EditProposal {
  const pixels = new Float32Array(region.width * region.height * 3);
  forEachPixel(region, (x, y, k) => {
    const i = (y * image.width + 2 * region.left + region.width - 1 - x) * 3;
    pixels.set(image.data.subarray(i, i + 3), k * 3);
  });
  return { region, params: { mode: 'mirror', axis: 'x', feather: MIRROR_FEATHER }, pixels, mask: ellipseMask(region, MIRROR_FEATHER) };
}
