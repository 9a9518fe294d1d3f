import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';
import { DEFAULT_EMBED_MODEL, preprocessPathFor } from './embed.js';
import { hostPaths } from './train.js';

/** The native dataset layouts probe/encoder reads. */
export const PROBE_LAYOUTS = ['pets', 'sun397', 'cub', 'cifar100'] as const;
/** Table 5's datasets in the paper's order. */
export const TABLE5_DATASETS = ['pets', 'sun397', 'cub', 'cifar100'] as const;

const folder = z.union([artifactRefSchema, z.string().min(1)]);

export const probeDataset = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (it names a folder)').describe('Column label and folder name, e.g. pets.'),
  layout: z.enum(PROBE_LAYOUTS).describe('pets: annotations/trainval.txt + test.txt, images/; sun397: class folders + Training_NN/Testing_NN.txt; cub: CUB-200-2011 index files; cifar100: cifar-100-python pickles.'),
  root: folder.describe('The dataset folder on the host that runs the stage, or a folder artifact.'),
  partition: z.number().int().min(1).max(10).default(1).describe('SUN397: which of the ten train/test partitions (Training_01 ... _10). @default 1'),
  maxPerClass: z.number().int().positive().optional().describe('At most this many images per class in each split, drawn by the seed (a quick look). @default all'),
});

export const probeInputs = z.strictObject({
  datasets: z.array(probeDataset).min(1).max(20)
    .refine((d) => new Set(d.map((x) => x.name)).size === d.length, { message: 'dataset names must be unique' })
    .describe('The datasets, each in its own layout.'),
  features: z.enum(['onnx', 'torch']).default('onnx')
    .describe('onnx: an ONNX image encoder on CPU (the embed/images code); torch: a VLM\'s vision tower (gpu/probe_features.py) on a GPU host. @default onnx'),
  model: z.union([z.string().min(1), artifactRefSchema]).default(DEFAULT_EMBED_MODEL)
    .describe(`onnx: the encoder file; torch: a Hugging Face id, a model folder, or a folder artifact (Qwen2.5-VL and other AutoModelForImageTextToText with a visual tower). @default ${DEFAULT_EMBED_MODEL}`),
  preprocess: z.string().min(1).optional().describe("onnx: the encoder's preprocessing spec. @default the model path with .onnx replaced by .preprocess.json"),
  batchSize: z.number().int().min(1).max(512).default(16).describe('Images per forward pass. @default 16'),
  threads: z.number().int().min(1).max(256).optional().describe("onnx: onnxruntime intra-op threads. @default the worker's available parallelism"),
  torch: z.strictObject({
    python: z.string().min(1).default('python').describe('The interpreter of the environment with torch and transformers on the GPU host.'),
    device: z.string().min(1).default('cuda').describe('torch device. @default cuda'),
    dtype: z.enum(['float32', 'bfloat16', 'float16']).default('bfloat16').describe('Weights and activations dtype. @default bfloat16'),
    maxPixels: z.number().int().positive().default(200704).describe("The image processor's max_pixels (Qwen2.5-VL: 256 merged patches at 200704). @default 200704"),
  }).prefault({}).describe('torch features: where and how the vision tower runs.'),
  python: z.string().min(1).optional().describe("The interpreter with numpy and scikit-learn that fits the probes (and decodes CIFAR). @default this checkout's .venv/bin/python"),
  seed: z.number().int().nonnegative().default(0).describe('Draws maxPerClass subsets and the validation split. @default 0'),
  k: z.number().int().positive().default(20).describe('kNN neighbours. @default 20'),
  temperature: z.number().positive().default(0.07).describe('kNN vote weight exp(cosine / temperature). @default 0.07'),
  C: z.array(z.number().positive()).min(1).default([0.1, 1, 10, 100])
    .describe('Inverse regularisation strengths of the logistic regression, one chosen on a validation split of train. @default [0.1, 1, 10, 100]'),
  valFraction: z.number().gt(0).lt(1).default(0.2).describe('Share of train held out (stratified, seeded) to choose C; then the probe is refitted on all of train. @default 0.2'),
  maxIter: z.number().int().positive().default(1000).describe('lbfgs iterations per fit. @default 1000'),
});
export type ProbeInputs = z.infer<typeof probeInputs>;

const pct = z.number().min(0).max(100);
const count = z.number().int().nonnegative();

export const probeDatasetResult = z.strictObject({
  linear: pct.describe('Linear-probe top-1 test accuracy, %.'),
  knn: pct.describe('kNN top-1 test accuracy, %.'),
  C: z.number().positive().describe('The C the validation split chose.'),
  train: count,
  test: count,
  classes: count,
  dims: count,
});

export const probeKind = defineKind({
  uses: 'probe/encoder',
  // 1: onnx or torch features, linear probe with C from a validation split, cosine kNN.
  version: '1',
  description:
    "Probe a frozen image encoder (Table 5): features from an ONNX encoder on CPU or a VLM's vision tower on a GPU host, then a linear probe " +
    '(L2-normalised features, scikit-learn logistic regression, C chosen on a validation split) and kNN (cosine, k = 20, votes weighted by ' +
    'exp(cosine / 0.07)), top-1 accuracy per dataset, each read in its own layout (Oxford-IIIT Pets, SUN397, CUB-200-2011, CIFAR-100). A dataset ' +
    'whose features or fit finished is not done again on a retry.',
  with: probeInputs,
  outputs: z.strictObject({
    datasets: z.record(z.string(), probeDatasetResult).describe('Per dataset: accuracies, the chosen C, image, class and feature counts.'),
    features: z.record(z.string(), z.strictObject({ train: artifactRefSchema, test: artifactRefSchema, labels: artifactRefSchema }))
      .describe('Per dataset: train and test features (float32 matrices, not normalised) and labels.json (classes, each row\'s class and image).'),
    results: artifactRefSchema.describe('JSON: per dataset the numbers above, each C\'s validation accuracy, and every test prediction of both probes.'),
  }),
  defaultQueue: 'cpu',
  queueFor: (w) => (w.features === 'torch' ? 'gpu' : undefined),
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 24 * 3_600_000,
  // Inputs arrive before defaults: a dataset folder's listing and the ONNX encoder join the cache key.
  readsPaths: (w) => {
    const roots = Array.isArray(w.datasets) ? w.datasets.map((d) => (d as { root?: unknown }).root) : [];
    const model = typeof w.model === 'string' ? w.model : w.model === undefined ? DEFAULT_EMBED_MODEL : undefined;
    const onnx = w.features !== 'torch' && model ? [model, typeof w.preprocess === 'string' ? w.preprocess : preprocessPathFor(model)] : [];
    const local = w.features === 'torch' ? hostPaths(model).filter((p) => p.startsWith('/') || p.startsWith('.')) : [];
    return [...hostPaths(...roots), ...onnx, ...local];
  },
});

export const probeKinds = [probeKind] as const;
