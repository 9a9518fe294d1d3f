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

export const SEARCH_PRECISIONS = ['f32', 'f16', 'i8'] as const;

const hnswSearch = z.strictObject({
  method: z.literal('hnsw'),
  precision: z.enum(SEARCH_PRECISIONS).default('i8')
    .describe('How the graph stores vectors: f32, f16 (half the memory) or i8 (a quarter); neighbours found are scored again in float32. @default i8'),
  connectivity: z.number().int().min(4).max(256).default(16).describe("Edges per node (HNSW's M). @default 16"),
  expansionAdd: z.number().int().min(8).max(4096).default(128).describe('Candidates kept while inserting (efConstruction). @default 128'),
  expansionSearch: z.number().int().min(8).max(4096).default(64).describe('Candidates kept while searching (ef). @default 64'),
  reproducible: z.boolean().default(true)
    .describe('Insert with one thread, so the same inputs give the same candidates every run; false inserts on every core (faster, results can differ run to run). @default true'),
  recallSample: z.number().int().min(0).default(1000)
    .describe('Rows checked against an exact search for the recall in counts; 0 skips the check. @default 1000'),
});

/** The search a similarity stage runs: exact (every pair scored) or an approximate HNSW graph. */
function searchInput<T extends z.ZodRawShape>(extra: T) {
  return z.discriminatedUnion('method', [z.strictObject({ method: z.literal('exact') }), hnswSearch.extend(extra)])
    .default({ method: 'exact' })
    .describe(
      'exact (default): every image pair is scored. hnsw: an approximate nearest-neighbour graph (usearch), for sets too large to score ' +
      'every pair (Twin x10 and beyond); counts.search says the precision and the recall against exact search on a sample.',
    );
}

const searchCounts = z.strictObject({
  method: z.enum(['exact', 'hnsw']),
  precision: z.enum(SEARCH_PRECISIONS).describe('How vectors were compared while searching (f32 for exact search).'),
  recall: z.number().min(0).max(1).optional().describe('hnsw: the share of the exact results found, over the sampled rows.'),
  sampled: count.optional().describe('hnsw: how many rows (dedupe: images; shortlist: instances) the recall was measured on.'),
});

export const dedupeInputs = z.strictObject({
  instances: artifactRefSchema.describe('The prepared instance manifest that embed/images read (one instance per listing).'),
  ...embedded,
  minScore: z.number().min(-1).max(1).optional()
    .describe('Drop flags whose cosine similarity is below this. @default none: every flag counts'),
  search: searchInput({}),
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
    search: searchCounts,
  }),
});

export const dedupeKind = defineKind({
  uses: 'twin/dedupe',
  // 3: search (exact or hnsw), and counts.search.
  version: '3',
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
  search: searchInput({
    spread: z.number().min(1).max(100).default(4)
      .describe("hnsw: each image of an instance with m images and k to find asks the graph for m + spread x k images. @default 4"),
  }),
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
    search: searchCounts,
  }),
});

export const shortlistKind = defineKind({
  uses: 'twin/shortlist',
  // 3: search (exact or hnsw), and counts.search.
  version: '3',
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
