import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** The local edits `twin/synthesize-variants` can make; each is one kind of "different instance". */
export const SYNTH_EDITS = ['recolor', 'patch', 'shape'] as const;
export type SynthEdit = (typeof SYNTH_EDITS)[number];

/** What every generated image's manifest entry carries as `origin`. */
export const SYNTH_ORIGIN = 'synthesize-variants';

export const synthesizeInputs = z.strictObject({
  instances: artifactRefSchema
    .describe('A prepared instance manifest (the instances output of images/prepare or twin/merge); its listing and review images are edited.'),
  perInstance: z.number().int().min(0).max(20).default(3)
    .describe('Generated images per instance. @default 3'),
  edits: z.array(z.enum(SYNTH_EDITS)).min(1)
    .refine((edits) => new Set(edits).size === edits.length, 'list each edit once')
    .default([...SYNTH_EDITS])
    .describe(
      'Edits to use, cycled per instance in a seeded order: recolor (one part of the object in another colour), ' +
      'patch (a logo-like detail removed, swapped or added), shape (a part stretched, squashed or mirrored). @default all three',
    ),
  seed: z.number().int().default(0)
    .describe('Seeds the edit order, the source image, the region and the parameters of every variant. @default 0'),
  maxInstances: z.number().int().positive().optional()
    .describe('Edit at most this many instances (those with real images, in manifest order). @default every instance'),
});

export type SynthesizeSpec = z.infer<typeof synthesizeInputs>;

const count = z.number().int().nonnegative();

export const synthesizeOutputs = z.strictObject({
  generated: artifactRefSchema.describe(
    'Generated-images manifest: instance rows whose images all have role "generated", origin "synthesize-variants" ' +
    'and an `edit` record { type, region, params, source }.',
  ),
  items: artifactRefSchema.describe(
    'Review items, one per generated image: id `gen:<sha256>`, group = instance id, images [real source, generated].',
  ),
  counts: z.strictObject({
    instances: count.describe('Instances that got generated images.'),
    generated: count.describe('Images generated and stored.'),
    skipped: count.describe('Instances left out for having no listing or review image.'),
    dropped: count.describe('Variants left out: the edit changed nothing visible (e.g. a blank photo) or repeated an earlier image.'),
  }),
});

export const synthesizeKind = defineKind({
  uses: 'twin/synthesize-variants',
  version: '2',
  description:
    'Generate hard negatives on CPU: subtle, seeded local edits (recolor, patch, shape) of each instance\'s real ' +
    'photos, written as a generated-images manifest plus review items for human validation (DreamBooth is the GPU source).',
  with: synthesizeInputs,
  outputs: synthesizeOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const synthesizeKinds = [synthesizeKind] as const;
