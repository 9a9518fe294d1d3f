import type { SynthEdit } from '../../../engine/kinds/synthesize.js';
import { keyedRandom } from '../pairs.js';
import { type EditProposal, composite, maskedChange } from './mask.js';
import { patch } from './patch.js';
import type { Raster } from './raster.js';
import { recolor } from './recolor.js';
import { shape } from './shape.js';

/**
 * Choosing and applying one variant's edit. Every random draw comes from a generator keyed
 * by (seed, instance id, variant number), never from a shared stream, so a variant's image
 * does not depend on manifest order, on other instances or on how many variants are made.
 */

const EDITS: Record<SynthEdit, (image: Raster, random: () => number) => EditProposal> = { recolor, patch, shape };

/** Mean change (0..255 a channel, under the mask) below which a proposal is tried again. */
const VISIBLE_CHANGE = 6;
/** Proposals tried before the most visible one is taken anyway. */
const TRIES = 6;

export interface AppliedEdit {
  image: Raster;
  proposal: EditProposal;
  /** Mean absolute change under the mask, per channel. */
  change: number;
}

/** Applies an edit of `type`; a proposal that barely shows (a recolor of a white wall) is drawn again. */
export function applyEdit(type: SynthEdit, source: Raster, random: () => number): AppliedEdit {
  let best: AppliedEdit | undefined;
  for (let i = 0; i < TRIES; i++) {
    const proposal = EDITS[type](source, random);
    const image = composite(source, proposal);
    const change = maskedChange(source, image, proposal);
    if (!best || change > best.change) best = { image, proposal, change };
    if (change >= VISIBLE_CHANGE) break;
  }
  return best!;
}

/** The instance's edit cycle: `edits` in a seeded order, variant v takes entry v mod length. */
export function editCycle(edits: readonly SynthEdit[], seed: number, instanceId: string): SynthEdit[] {
  const order = [...edits];
  const random = keyedRandom(seed, instanceId, 'edit-order');
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
