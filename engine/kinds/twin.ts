import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/**
 * One row of the category table: a listing belongs to `category` when its
 * `main_category` is one of the given values and/or its title matches the pattern.
 * The first matching rule wins.
 */
export const categoryRuleSchema = z
  .strictObject({
    category: z.string().min(1).describe('The object category, e.g. "sneaker" (36 in the full recipe).'),
    supercategory: z.string().optional().describe('Its supercategory, e.g. "clothing".'),
    main_category: z.union([z.string(), z.array(z.string()).min(1)]).optional()
      .describe("Listings whose Amazon `main_category` is one of these (case-insensitive)."),
    title: z.string().optional().describe('A regular expression the title must match (case-insensitive).'),
  })
  .refine((r) => r.main_category !== undefined || r.title !== undefined, {
    message: 'a category rule needs `main_category`, `title` or both',
  });

export type CategoryRule = z.infer<typeof categoryRuleSchema>;

export const sourceInputs = z.strictObject({
  catalog: z.string().min(1).describe('Listing metadata JSONL in the Amazon Reviews 2023 layout (meta_*.jsonl).'),
  reviews: z.string().optional().describe('Review JSONL whose `images[]` add photos to the listing they review.'),
  imagesRoot: z.string().optional().describe("Folder that relative image paths are under (default: the catalog's folder)."),
  categories: z.union([z.array(categoryRuleSchema).min(1), z.string().min(1)])
    .describe('The category table, inline or as a YAML/JSON file path.'),
  unmatched: z.enum(['drop', 'keep']).default('drop').describe('What to do with listings no rule matches (kept ones get category "other").'),
  minImages: z.number().int().min(1).default(1).describe('Listings with fewer usable images are left out.'),
});

export const sourceKind = defineKind({
  uses: 'twin/source',
  // 2: images carry source_sha256; symlinks out of the images folder and malformed lines are refused.
  version: '2',
  description: 'Read a product catalog (Amazon Reviews 2023 layout), map listings to categories and write the instance manifest.',
  with: sourceInputs,
  outputs: z.strictObject({
    instances: artifactRefSchema,
    report: artifactRefSchema,
    counts: z.record(z.string(), z.number()),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  readsPaths: (w) => {
    const catalog = String(w.catalog);
    const folder = catalog.includes('/') ? catalog.slice(0, catalog.lastIndexOf('/')) || '/' : '.';
    const paths = [catalog, typeof w.imagesRoot === 'string' ? w.imagesRoot : folder];
    if (typeof w.reviews === 'string') paths.push(w.reviews);
    if (typeof w.categories === 'string') paths.push(w.categories);
    return paths;
  },
});


export const mergeInputs = z.strictObject({
  instances: artifactRefSchema.describe('The prepared instance manifest the candidates were found in.'),
  candidates: artifactRefSchema.describe('Candidate duplicate pairs: the items output of twin/dedupe.'),
  decisions: artifactRefSchema.describe('Decisions over those items (core/decide or core/review); `accept` merges the pair.'),
});

export const mergeKind = defineKind({
  uses: 'twin/merge',
  version: '1',
  description:
    'Merge listings confirmed as duplicates into one instance (union-find over accepted candidate pairs) and write ' +
    'the merged instance manifest and a merge report.',
  with: mergeInputs,
  outputs: z.strictObject({
    instances: artifactRefSchema,
    report: artifactRefSchema,
    counts: z.strictObject({
      before: z.number().int().nonnegative(),
      after: z.number().int().nonnegative(),
      merged: z.number().int().nonnegative().describe('Groups of two or more listings.'),
      accepted: z.number().int().nonnegative(),
      rejected: z.number().int().nonnegative(),
      undecided: z.number().int().nonnegative(),
      duplicateImages: z.number().int().nonnegative().describe('Images dropped because a merged listing already had the same bytes.'),
    }),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const twinKinds = [sourceKind, mergeKind] as const;
