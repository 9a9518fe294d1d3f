import type { ManifestRow } from '../data/manifest.js';
import type { ReviewImage } from '../review/items.js';
import type { EmbeddedInstances } from './load.js';

/** The image of matrix row `r` as a reviewer sees it. */
export function reviewImage(e: EmbeddedInstances, r: number): ReviewImage {
  const entry = e.index[r]!;
  const owner: ManifestRow | undefined = e.rows[e.rowInstance[r]!];
  const role = owner?.images.find((im) => im.sha256 === entry.sha256)?.role;
  return { path: entry.image, sha256: entry.sha256, instance_id: owner?.instance_id ?? entry.instance_id, ...(role ? { role } : {}) };
}

/** FNV-1a of a string, for seeds keyed by ids (independent of order). */
export function hashString(text: string, seed = 0): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h >>> 0;
}
