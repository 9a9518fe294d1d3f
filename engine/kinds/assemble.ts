import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** Formats `twin/assemble` can write; each is written once per split (train = Twin, eval = Twin-Eval). */
export const ASSEMBLE_EXPORTS = ['rows', 'verl', 'sharegpt'] as const;
export type AssembleExport = (typeof ASSEMBLE_EXPORTS)[number];

export const TWIN_ROWS_MEDIA_TYPE = 'application/x-twinflow-twin-rows+jsonl';
export const TWIN_META_MEDIA_TYPE = 'application/x-twinflow-twin-meta+jsonl';
export const PARQUET_MEDIA_TYPE = 'application/vnd.apache.parquet';
export const SHAREGPT_MEDIA_TYPE = 'application/x-twinflow-sharegpt+json';

const count = z.number().int().nonnegative();

export const assembleInputs = z.strictObject({
  instances: artifactRefSchema.describe('The merged, prepared instance manifest (listing and review images are the real photos).'),
  hardNegatives: artifactRefSchema.optional()
    .describe('Hard-negative candidates: the review items of twin/shortlist (id `hn:<anchor>|<candidate>`, metadata.anchor, metadata.candidate).'),
  hardDecisions: artifactRefSchema.optional()
    .describe('Decisions over hardNegatives; only `accept` makes a pair. Required with hardNegatives.'),
  generated: artifactRefSchema.optional()
    .describe('Generated-images manifest (instance rows whose images have role "generated").'),
  generatedDecisions: artifactRefSchema.optional()
    .describe('Decisions over items `gen:<sha256>`; only accepted generated images are used. Required with generated.'),
  evalFraction: z.number().min(0).max(1).default(0.1)
    .describe('Share of instances (rounded) held out for Twin-Eval; ignored when evalInstances is set. @default 0.1'),
  evalInstances: count.optional().describe('Exact number of instances held out for Twin-Eval.'),
  seed: z.number().int().default(0).describe('Seeds the split, the subsample and the row order. @default 0'),
  target: z.number().int().positive().optional()
    .describe('Twin queries to keep, drawn with the kinds\' proportions (the scaling study: 5000, 50000, 250000, 561000). @default all'),
  evalTarget: z.number().int().positive().optional().describe('Twin-Eval queries to keep, drawn the same way. @default all'),
  balance: z.boolean().default(false)
    .describe('Downsample the majority answer so yes = no, and order rows so every shard of shardRows rows is balanced. @default false'),
  shardRows: z.number().int().min(2).multipleOf(2).default(10_000)
    .describe('Shard length for balance: each consecutive run of this many rows holds equal yes and no. @default 10000'),
  templates: z.array(z.string().min(1)).min(1).optional()
    .describe('Question templates; `{category}` is filled in and each must ask for <answer>yes</answer> or <answer>no</answer>. @default the built-in three'),
  exports: z.array(z.enum(ASSEMBLE_EXPORTS)).min(1).default([...ASSEMBLE_EXPORTS])
    .describe('What to write: Twin-shaped rows (JSONL, and <split>.rows.parquet with the images inside, for datasets), verl parquet (images inside), LLaMA-Factory sharegpt JSON (paths under media_dir). @default all three'),
  images: z.enum(['folder', 'embed']).default('folder')
    .describe('folder: each used image also copied once to <out>/images/<sha256>.<ext> (the JSONL rows and sharegpt name them there); embed: no images/ folder when verl is the only export. The parquet files carry image bytes either way. @default folder'),
  out: z.string().min(1).optional()
    .describe('Dataset folder to write. @default <TWINFLOW_HOME>/datasets/<runId>/<stageId>'),
});

export type AssembleSpec = z.infer<typeof assembleInputs>;

const kindCounts = z.strictObject({
  positive: count,
  'hard-negative': count,
  'generated-negative': count,
  total: count,
});

export const assembleOutputs = z.strictObject({
  dataset: z.string().describe('The dataset folder on the host that wrote it: rows, parquet, sharegpt, images, stats and figure, loadable as is.'),
  datasetTree: artifactRefSchema.describe('The same folder as one artifact (a tree of file digests): `twinflow pull RUN/STAGE/datasetTree DIR` writes it anywhere.'),
  files: z.record(z.string(), artifactRefSchema)
    .describe('Every written file (e.g. train.jsonl, eval.parquet, stats.json) as an artifact, by its name in the folder.'),
  counts: z.strictObject({ train: kindCounts, eval: kindCounts }).describe('Queries written per split and kind.'),
});

export const assembleKind = defineKind({
  uses: 'twin/assemble',
  // 3: every card config is Parquet (the rows also as <split>.rows.parquet) and verl images carry their bytes in folder mode too.
  version: '3',
  description:
    'Build the Twin pair queries (positives, approved hard negatives, approved generated negatives), split them into ' +
    'Twin and Twin-Eval by instance, subsample and order them by seed, and export them as Twin-shaped JSONL rows, ' +
    'verl parquet and LLaMA-Factory sharegpt with their images, statistics and a queries-per-instance figure. ' +
    'The sharegpt rows carry the label only (the paper\'s SFT used teacher explanations).',
  with: assembleInputs,
  outputs: assembleOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  outputFolders: ['dataset'],
  // `out` is a folder this stage writes, not one it reads, so it stays out of the cache key.
});

export const assembleKinds = [assembleKind] as const;
