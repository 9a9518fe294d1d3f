import type { StageKind } from './kind.js';
import { coreKinds } from './core.js';
import { twinKinds } from './twin.js';
import { imageKinds } from './images.js';
import { embedKinds } from './embed.js';
import { reviewKinds } from './review.js';
import { assembleKinds } from './assemble.js';
import { similarityKinds } from './similarity.js';
import { synthesizeKinds } from './synthesize.js';
import { fgvqaKinds } from './fgvqa.js';
import { reportKinds } from './report.js';

export type { StageKind } from './kind.js';

/** Every stage kind twinflow knows, by `uses` name. Later families add their lists here. */
export const kinds: ReadonlyMap<string, StageKind> = new Map(
  [...coreKinds, ...reviewKinds, ...twinKinds, ...imageKinds, ...embedKinds, ...similarityKinds, ...synthesizeKinds, ...assembleKinds, ...fgvqaKinds, ...reportKinds].map((kind) => [kind.uses, kind]),
);

export function getKind(uses: string): StageKind | undefined {
  return kinds.get(uses);
}
