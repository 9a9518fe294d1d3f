import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

export { artifactRefSchema };

/** Decode memory of one image, and the worker's budget for all of them, unless told otherwise. */
export const DEFAULT_MEMORY_MB = 1024;

export const prepareInputs = z.strictObject({
  instances: artifactRefSchema.describe('The instance manifest (JSONL) whose images to prepare.'),
  maxSide: z.number().int().min(16).max(8192).default(512)
    .describe('Longest side of a prepared image, in pixels; smaller images are never enlarged. @default 512'),
  format: z.enum(['jpeg', 'png', 'webp']).default('jpeg').describe('Encoding of prepared images. @default jpeg'),
  quality: z.number().int().min(1).max(100).default(90).describe('Encoder quality for jpeg and webp. @default 90'),
  maxPixels: z.number().int().positive().default(40_000_000)
    .describe('Images with more pixels (width x height) are quarantined unread, as pixel bombs. @default 40000000'),
  maxFileMB: z.number().int().min(1).max(4096).default(128)
    .describe('Source files larger than this are quarantined unread; every file is read whole into memory once. @default 128'),
  memoryMB: z.number().int().min(16).max(1_048_576).default(DEFAULT_MEMORY_MB)
    .describe(
      'Most memory one image may need to decode (estimated from its header); a larger one is quarantined with what it needs. ' +
      "All images/prepare stages of a worker share that worker's budget, TWINFLOW_IMAGE_MEMORY_MB, which must be at least this. @default 1024",
    ),
  concurrency: z.number().int().min(1).max(64).optional()
    .describe("Images decoded at once, memory permitting. @default the worker's available parallelism"),
});

const count = z.number().int().nonnegative();

export const prepareOutputs = z.strictObject({
  instances: artifactRefSchema.describe('The manifest with every surviving image stored and measured.'),
  quarantine: artifactRefSchema.describe('JSONL report of rejected images and dropped instances, each with a reason.'),
  counts: z.strictObject({
    instances: count.describe('Instances kept (those with at least one usable image).'),
    images: count.describe('Images read.'),
    prepared: count.describe('Images stored, duplicates included.'),
    quarantined: count.describe('Images rejected.'),
    deduplicated: count.describe('Prepared images whose bytes an earlier image of this stage already produced.'),
    largestReservationMB: count.describe('The most decode memory any one image reserved (MB); a guide for memoryMB.'),
  }),
});

export const prepareKind = defineKind({
  uses: 'images/prepare',
  version: '3',
  description:
    'Decode every image of an instance manifest, apply EXIF orientation, convert to sRGB, cap the longest side ' +
    'and store the results content-addressed. Bad files are quarantined with a reason; the stage goes on with the rest.',
  with: prepareInputs,
  outputs: prepareOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const imageKinds = [prepareKind] as const;
