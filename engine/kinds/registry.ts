import type { KindFamily, StageKind } from './kind.js';
import { coreKinds } from './core.js';
import { twinKinds } from './twin.js';
import { imageKinds } from './images.js';
import { embedKinds } from './embed.js';
import { reviewKinds } from './review.js';
import { assembleKinds } from './assemble.js';
import { similarityKinds } from './similarity.js';
import { synthesizeKinds } from './synthesize.js';
import { dreamboothKinds } from './dreambooth.js';
import { fgvqaKinds } from './fgvqa.js';
import { reportKinds } from './report.js';
import { trainKinds } from './train.js';
import { evaluateKinds } from './evaluate.js';
import { probeKinds } from './probe.js';

export type { StageKind } from './kind.js';

/**
 * Every stage kind twinflow knows, in the README's order. A new kind is added to its
 * family's list (or a new family here); activities/kinds.ts must then implement it.
 */
export const kindList = [
  ...coreKinds, ...reviewKinds,
  ...twinKinds, ...imageKinds, ...embedKinds, ...similarityKinds, ...synthesizeKinds, ...dreamboothKinds, ...assembleKinds,
  ...fgvqaKinds, ...reportKinds, ...trainKinds, ...evaluateKinds, ...probeKinds,
] as const;

/** The kinds under their README headings (scripts/kind-tables.ts writes the tables). */
export const kindFamilies: readonly KindFamily[] = [
  { id: 'engine', title: 'Stage kinds in the engine', kinds: [...coreKinds, ...reviewKinds] },
  { id: 'twin', title: 'Twin dataset kinds', kinds: [...twinKinds, ...imageKinds, ...embedKinds, ...similarityKinds, ...synthesizeKinds, ...dreamboothKinds, ...assembleKinds] },
  { id: 'fgvqa', title: 'FGVQA kinds', kinds: fgvqaKinds },
  { id: 'report', title: 'Report kinds', kinds: reportKinds },
  { id: 'train', title: 'Training kinds (GPU hosts)', kinds: trainKinds },
  { id: 'evaluate', title: 'General evaluation kinds (GPU hosts)', kinds: [...evaluateKinds, ...probeKinds] },
];

export type AnyKind = (typeof kindList)[number];
/** Kinds whose stages are an activity on a worker (not an approval or a review the workflow holds). */
export type ActivityKind = Extract<AnyKind, { handler: 'activity' }>;
export type KindName = AnyKind['uses'];
export type KindNamed<U extends KindName> = Extract<AnyKind, { uses: U }>;

/** Every stage kind twinflow knows, by `uses` name. */
export const kinds: ReadonlyMap<string, StageKind> = new Map(kindList.map((kind) => [kind.uses, kind]));

export function getKind(uses: string): StageKind | undefined {
  return kinds.get(uses);
}
