import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** Kinds that search image embeddings for pairs people should judge (paper §3, App. B). */

const embedded = {
  embeddings: artifactRefSchema.describe('The embeddings output of embed/images (L2-normalised float32 rows).'),
  index: artifactRefSchema.describe('The index output of the same embed/images stage (one line per matrix row).'),
  dims: z.number().int().min(1).optional()
    .describe('Columns of the matrix. @default embeddings.counts.dims, else the file size over the index rows'),
  threads: z.number().int().min(1).max(256).optional()
    .describe("onnxruntime intra-op threads for the similarity GEMM. @default the worker's available parallelism"),
};

const count = z.number().int().nonnegative();

export const dedupeInputs = z.strictObject({
  instances: artifactRefSchema.describe('The prepared instance manifest that embed/images read (one instance per listing).'),
  ...embedded,
  minScore: z.number().min(-1).max(1).optional()
    .describe('Drop flags whose cosine similarity is below this. @default none: every flag counts'),
});

export const dedupeOutputs = z.strictObject({
  candidates: artifactRefSchema.describe(
    'Review items, one per candidate pair: id dup:<a>|<b> (a < b), score = best cosine, images = the best image pair, ' +
    'metadata { instance_1, instance_2, title_1, title_2, category_1, category_2, asins_1, asins_2, flags { from_1, from_2 } }; best first.',
  ),
  counts: z.strictObject({
    products: count.describe('Listings in the manifest.'),
    images: count.describe('Listing and review images searched (each distinct image of a listing once).'),
    flags: count.describe('Images flagged: for each listing with m images, its m most similar images of other listings.'),
    candidates: count.describe('Distinct listing pairs those flags name.'),
  }),
});

export const dedupeKind = defineKind({
  uses: 'twin/dedupe',
  version: '2',
  description:
    'Find candidate duplicate listings: each listing with m images flags the m images of other listings most similar to ' +
    'any of its own (exact cosine search), and flags between two listings make one candidate pair for people to confirm.',
  with: dedupeInputs,
  outputs: dedupeOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const shortlistInputs = z.strictObject({
  instances: artifactRefSchema
    .describe('The instance manifest, usually merged by twin/merge; images map to matrix rows by sha256, so the pre-merge embeddings serve.'),
  ...embedded,
  seed: z.number().int().default(0).describe("Seeds each instance's k, keyed by its id. @default 0"),
  kMin: z.number().min(0).default(1).describe("k is drawn uniformly from the integers in [kMin x m, kMax x m], m = the instance's real images. @default 1"),
  kMax: z.number().min(0).default(2).describe('See kMin. @default 2'),
  sameCategory: z.boolean().default(false)
    .describe('Shortlist only instances of the same category. @default false (the paper compares with all other instances)'),
  maxPerInstance: z.number().int().min(1).optional().describe('At most this many candidates per instance. @default no cap'),
}).refine((w) => w.kMax >= w.kMin, { message: 'kMax must be at least kMin', path: ['kMax'] });

export const shortlistOutputs = z.strictObject({
  candidates: artifactRefSchema.describe(
    'Review items, one per (anchor, candidate): id hn:<anchor>|<candidate>, group = anchor, score = the highest cosine between ' +
    'any image of each, images = that pair (anchor first), metadata { anchor, candidate, rank, k, titles, categories }; ' +
    'anchors in manifest order, then by rank.',
  ),
  counts: z.strictObject({
    instances: count.describe('Instances in the manifest.'),
    candidates: count.describe('Items written.'),
  }),
});

export const shortlistKind = defineKind({
  uses: 'twin/shortlist',
  version: '2',
  description:
    'Shortlist hard-negative candidates: for each instance, the k other instances whose images come closest (the highest ' +
    'cosine between any two of their images, exact), k drawn from [1x, 2x] its real-image count by a seeded generator.',
  with: shortlistInputs,
  outputs: shortlistOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const similarityKinds = [dedupeKind, shortlistKind] as const;
