import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';
import { hostPaths } from './train.js';

/** What every image `dreambooth/generate` makes carries as `origin` in the generated-images manifest. */
export const DREAMBOOTH_ORIGIN = 'dreambooth';

/** The generation prompts: the paper's "an image of {category}", five ways. `{identifier}` may name the instance token. */
export const DREAMBOOTH_TEMPLATES = [
  'an image of a {category}',
  'an image of a {category}, product photo',
  'an image of a {category} on a plain background',
  'an image of a {category} on a table',
  'an image of a {category}, close-up',
] as const;

/** The training loop (gpu/dreambooth.py): editing it generates again. */
export const DREAMBOOTH_SCRIPT = fileURLToPath(new URL('../../gpu/dreambooth.py', import.meta.url));

const pos = () => z.number().int().positive();

export const dreamboothInputs = z.strictObject({
  instances: artifactRefSchema
    .describe('A prepared instance manifest (the instances output of images/prepare or twin/merge); each instance\'s listing and review images ground its fine-tune.'),
  model: z.union([z.string().min(1), artifactRefSchema]).default('stable-diffusion-v1-5/stable-diffusion-v1-5')
    .describe('Base text-to-image model in the diffusers layout: a model id (in the GPU host\'s Hugging Face cache), a folder on that host, or a folder artifact.'),
  finetune: z.enum(['lora', 'full']).default('lora').describe('`lora`: LoRA adapters on the UNet\'s attention projections; `full`: the whole UNet. @default lora'),
  steps: pos().optional().describe('Training steps per instance. @default 500 for lora, 400 for full (the diffusers DreamBooth README)'),
  learningRate: z.number().positive().optional().describe('AdamW learning rate, constant. @default 1e-4 for lora, 5e-6 for full'),
  rank: pos().default(4).describe('LoRA rank (and alpha). @default 4'),
  resolution: pos().default(512).describe('Training and generation size in pixels (square; grounding images are resized and centre-cropped). @default 512'),
  batchSize: pos().default(1).describe('Instance images per training step. @default 1'),
  grounding: z.strictObject({ min: pos().default(3), max: pos().default(5) }).default({ min: 3, max: 5 })
    .refine((g) => g.min <= g.max, 'grounding.min must not exceed grounding.max')
    .describe('How many real images ground each instance: a seeded count in [min, max], fewer when the instance has fewer. @default {min: 3, max: 5}'),
  identifier: z.string().regex(/^\S+$/, 'one word').default('sks').describe('The rare token naming the instance in "a photo of sks {category}". @default sks'),
  priorPreservation: z.boolean().default(false).describe('Add DreamBooth\'s prior-preservation loss on class images ("a photo of {category}") the base model draws, once per category. @default false'),
  priorLossWeight: z.number().nonnegative().default(1).describe('Weight of the prior-preservation loss. @default 1'),
  classImages: pos().default(100).describe('Class images per category for prior preservation. @default 100'),
  perInstance: z.number().int().min(0).max(100).default(5).describe('Images generated per instance, cycling through the templates. @default 5'),
  templates: z.array(z.string().min(1).refine((t) => /\{category\}/.test(t), 'a template names {category}')).min(1).default([...DREAMBOOTH_TEMPLATES])
    .describe('Generation prompts; `{category}` is the instance\'s category, `{identifier}` the instance token. @default five "an image of a {category}" variants'),
  inferenceSteps: pos().default(50).describe('Denoising steps per image. @default 50'),
  guidance: z.number().nonnegative().default(7.5).describe('Classifier-free guidance scale. @default 7.5'),
  seed: z.number().int().default(0).describe('Seeds the grounding pick, training and every generator. @default 0'),
  precision: z.enum(['fp16', 'bf16', 'no']).default('fp16').describe('Mixed precision (accelerate); `no` on CPU. @default fp16'),
  keepWeights: z.boolean().default(true).describe('Store each instance\'s adapter (or, for full, its UNet: about 3.4 GB each for SD 1.5) as the adapters output. @default true'),
  python: z.string().min(1).default('python3').describe('The interpreter of the GPU host\'s environment with torch, diffusers, accelerate and peft.'),
  instancesPerProcess: pos().default(8).describe('Instances per python process (the base model is loaded once for each). @default 8'),
  maxInstances: pos().optional().describe('Generate for at most this many instances (those with real images, in manifest order). @default every instance'),
  env: z.record(z.string(), z.string()).default({}).describe('Extra environment for the python processes (e.g. `HF_HOME`).'),
});

export type DreamboothSpec = z.infer<typeof dreamboothInputs>;

const count = z.number().int().nonnegative();

export const dreamboothKind = defineKind({
  uses: 'dreambooth/generate',
  // 1: DreamBooth (LoRA or full) per instance on 3-5 grounding images, five templates, resumable per instance.
  version: '1',
  description:
    'Generate hard negatives on a GPU host: per instance, fine-tune a text-to-image model (Stable Diffusion, LoRA by default) on 3-5 ' +
    'seeded grounding images with "a photo of sks {category}", then draw images from five "an image of a {category}" templates; ' +
    'written as the same generated-images manifest and review items as twin/synthesize-variants. Resumes per instance.',
  with: dreamboothInputs,
  outputs: z.strictObject({
    generated: artifactRefSchema.describe(
      'Generated-images manifest: instance rows whose images all have role "generated", origin "dreambooth" and a `dreambooth` record ' +
      '{ prompt, template, seed, model, finetune, steps, instancePrompt, grounding, weights, source }.',
    ),
    items: artifactRefSchema.describe('Review items, one per generated image: id `gen:<sha256>`, group = instance id, images [real grounding image, generated].'),
    adapters: artifactRefSchema.optional().describe('Each instance\'s trained weights, `<folder>/pytorch_lora_weights.safetensors` (or `<folder>/unet/`), as one folder artifact; absent with keepWeights false.'),
    counts: z.strictObject({
      instances: count.describe('Instances that got generated images.'),
      generated: count.describe('Images generated and stored.'),
      skipped: count.describe('Instances left out for having no listing or review image.'),
      resumed: count.describe('Instances an earlier attempt had finished: stored, not trained again.'),
      dropped: count.describe('Images left out for repeating an earlier image byte for byte.'),
    }),
  }),
  defaultQueue: 'gpu',
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 7 * 24 * 3_600_000,
  readsPaths: (w) => [...hostPaths(w.model), DREAMBOOTH_SCRIPT],
});

export const dreamboothKinds = [dreamboothKind] as const;
