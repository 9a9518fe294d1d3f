import { z } from 'zod';
import type { StageKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** Kinds that turn image embeddings into candidates for people to judge. */

const embedded = {
  instances: artifactRefSchema.describe('The instance manifest whose images were embedded (or one merged from it).'),
  embeddings: artifactRefSchema.describe('The embeddings output of embed/images (L2-normalised rows).'),
  index: artifactRefSchema.describe('The index output of the same embed/images stage.'),
  threads: z.number().int().min(1).max(256).optional().describe("onnxruntime threads for the similarity GEMM. @default the worker's available parallelism"),
};

const count = z.number().int().nonnegative();

export const dedupeInputs = z.strictObject({
  ...embedded,
  minScore: z.number().min(-1).max(1).optional().describe('Ignore flags whose cosine similarity is below this.'),
});

export const dedupeKind: StageKind = {
  uses: 'twin/dedupe',
  version: '1',
  description:
    'Find candidate duplicate listings: for each listing, flag the k most similar images of other listings ' +
    '(k = its image count) and group the flags into candidate pairs for people to confirm.',
  with: dedupeInputs,
  outputs: z.strictObject({
    candidates: artifactRefSchema.describe('Review items, one per candidate pair (id dup:<a>|<b>), best score first.'),
    counts: z.strictObject({ products: count, images: count, flags: count, candidates: count }),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  activity: 'dedupeCandidates',
};

export const shortlistInputs = z.strictObject({
  ...embedded,
  seed: z.number().int().default(0).describe('Seeds each instance\'s k. @default 0'),
  kMin: z.number().min(0).default(1).describe('k is drawn uniformly from [kMin x m, kMax x m], m = the instance\'s image count. @default 1'),
  kMax: z.number().min(0).default(2).describe('See kMin. @default 2'),
  sameCategory: z.boolean().default(false).describe('Only shortlist instances of the same category (the paper compares with all). @default false'),
  maxPerInstance: z.number().int().min(1).optional().describe('Cap on candidates per instance.'),
}).refine((w) => w.kMax >= w.kMin, { message: 'kMax must be at least kMin', path: ['kMax'] });

export const shortlistKind: StageKind = {
  uses: 'twin/shortlist',
  version: '1',
  description:
    'Shortlist hard-negative candidates: for each instance, the k other instances whose images are most similar ' +
    '(max image-to-image cosine), k drawn from [1x, 2x] its image count with a seeded RNG.',
  with: shortlistInputs,
  outputs: z.strictObject({
    candidates: artifactRefSchema.describe('Review items grouped by anchor instance (id hn:<anchor>|<candidate>), by rank.'),
    counts: z.strictObject({ instances: count, candidates: count }),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  activity: 'shortlistHardNegatives',
};

export const candidateKinds: StageKind[] = [dedupeKind, shortlistKind];
