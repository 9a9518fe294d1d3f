import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** What `setup` converts nsfwjs's MobileNetV2Mid into (see scripts/convert-embedding-model.ts). */
export const DEFAULT_EMBED_MODEL = 'models/mobilenet_v2_mid.onnx';

export const MATRIX_MEDIA_TYPE = 'application/x-twinflow-f32-matrix';
export const EMBED_INDEX_MEDIA_TYPE = 'application/x-twinflow-embedding-index+jsonl';

/** The spec that goes with a model when `preprocess` is not given: `x.onnx` -> `x.preprocess.json`. */
export function preprocessPathFor(model: string): string {
  return model.endsWith('.onnx') ? `${model.slice(0, -'.onnx'.length)}.preprocess.json` : `${model}.preprocess.json`;
}

export const embedInputs = z.strictObject({
  instances: artifactRefSchema.describe('A prepared instance manifest (the instances output of images/prepare).'),
  model: z.string().min(1).default(DEFAULT_EMBED_MODEL)
    .describe(`Any image-encoder ONNX file taking one float32 image batch and giving [N, dims]. @default ${DEFAULT_EMBED_MODEL}`),
  preprocess: z.string().min(1).optional()
    .describe('Its preprocessing spec (JSON: inputName, outputName, size, layout, scale, mean, std, dims). @default the model path with .onnx replaced by .preprocess.json'),
  batchSize: z.number().int().min(1).max(512).default(16).describe('Images per inference call. @default 16'),
  threads: z.number().int().min(1).max(256).optional()
    .describe("onnxruntime intra-op threads. @default the worker's available parallelism"),
  normalize: z.boolean().default(true).describe('L2-normalize every row, so a dot product is a cosine. @default true'),
});

const count = z.number().int().nonnegative();

export const embedOutputs = z.strictObject({
  embeddings: artifactRefSchema.describe(`Raw little-endian float32 matrix, row-major, images x dims (${MATRIX_MEDIA_TYPE}).`),
  index: artifactRefSchema.describe('JSONL, one row per matrix row in order: { row, instance_id, image, sha256 }.'),
  counts: z.strictObject({
    images: count.describe('Rows of the matrix: every image of the manifest, in manifest order.'),
    dims: count.describe('Columns of the matrix: the embedding length.'),
  }),
});

export const embedKind = defineKind({
  uses: 'embed/images',
  version: '2',
  description:
    'Embed every image of a prepared manifest with an ONNX image encoder (onnxruntime, CPU) and write a float32 ' +
    'matrix with a row index. Any encoder works: its preprocessing spec says how to feed it.',
  with: embedInputs,
  outputs: embedOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  // Inputs arrive here before defaults are filled, so the defaults are applied again.
  readsPaths: (w) => {
    const model = typeof w.model === 'string' ? w.model : DEFAULT_EMBED_MODEL;
    return [model, typeof w.preprocess === 'string' ? w.preprocess : preprocessPathFor(model)];
  },
});

export const embedKinds = [embedKind] as const;
