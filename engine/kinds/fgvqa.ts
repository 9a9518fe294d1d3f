import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';
import { DEFAULT_EMBED_MODEL, preprocessPathFor } from './embed.js';

/** A JSONL input: a file on the worker's host, or an artifact of an earlier stage. */
const jsonlInput = z.union([z.string().min(1), artifactRefSchema]);

export const FGVQA_QUERIES_MEDIA_TYPE = 'application/x-twinflow-fgvqa-queries+jsonl';
export const FGVQA_SOURCES = ['cub', 'landmarks', 'met', 'ilias', 'inquire', 'twin-eval'] as const;

export const buildInputs = z.strictObject({
  source: z.enum([...FGVQA_SOURCES, 'fgvqa']).describe(
    'Which dataset `root` holds, in its own layout: cub (CUB-200-2011 index files), landmarks (GLDv2 train.csv + train/), ' +
    'met (MET mini_MET_database.json + MET/), ilias (ILIAS core_db webdataset shards), inquire (INQUIRE-Rerank validation Parquet), ' +
    'twin-eval (a twin/assemble dataset folder), or fgvqa (published FGVQA files, Parquet or JSONL, taken as they are with their question text).'),
  root: z.string().min(1).describe(
    'The dataset folder (or file, for inquire and fgvqa) on the worker host. Image paths the dataset lists must stay inside its folder, ' +
    'also with symbolic links followed; those that do not are left out.'),
  pairs: z.number().int().min(0).multipleOf(2).default(1000).describe('Pair queries, half yes and half no (not for fgvqa). @default 1000'),
  multi: z.number().int().min(0).multipleOf(4).default(1000).describe('Multi queries (a reference and three candidates), a quarter for each answer 0-3 (not for fgvqa). @default 1000'),
  seed: z.number().int().default(0).describe('Seeds the draw. @default 0'),
  negatives: z.enum(['random', 'nearest']).default('random').describe(
    'Where "no" images come from: random (any other identity of the source) or nearest (the identities closest to the reference by image embedding: harder queries). @default random'),
  nearest: z.number().int().min(3).max(1000).default(10).describe('With negatives: nearest, how many nearest identities "no" images are drawn from. @default 10'),
  model: z.string().min(1).default(DEFAULT_EMBED_MODEL).describe(`With negatives: nearest, the ONNX image encoder (its .preprocess.json beside it). @default ${DEFAULT_EMBED_MODEL}`),
  subsets: z.array(z.enum(FGVQA_SOURCES)).default([]).describe('For fgvqa: the sources to keep (all when empty). @default []'),
});

export const buildOutputs = z.strictObject({
  queries: artifactRefSchema.describe(
    'JSONL: {"id", "source", "type": "pair"|"multi", "images", "question", "answer", "identities"} (fgvqa: "extra" instead of "identities"). ' +
    '"images" are paths in the artifact store (copies named by content), so the queries change when an image does.'),
  published: artifactRefSchema.describe('The same queries in the published FGVQA row shape: dataset_source, question, answer, question_type, images, extra.'),
  counts: z.record(z.string(), z.number()).describe('identities and images (after bad images were left out), skipped (images left out), pairs, multi, and each answer.'),
  problems: z.array(z.string()).describe(
    'Images left out, each with where (file:line, or the identity a drawn image was filed under) and why: outside the dataset folder, ' +
    'missing, not a regular file, unreadable, not a JPEG/PNG/WebP/GIF image, undecodable for nearest negatives, or the same bytes as another. At most 20 lines.'),
});

export const buildKind = defineKind({
  uses: 'fgvqa/build',
  // 3: queries name store copies of checked images; paths out of the dataset folder are refused.
  version: '3',
  description:
    'FGVQA queries from a source dataset in its own layout: pairs half yes / half no, multi queries a quarter per answer 0-3, seeded, no repeats. ' +
    'Every image a query uses is checked (inside the dataset folder, a readable JPEG/PNG/WebP/GIF file) and copied into the artifact store.',
  with: buildInputs,
  outputs: buildOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  readsPaths: (w) => [String(w.root), ...(w.negatives === 'nearest' ? [String(w.model ?? DEFAULT_EMBED_MODEL)] : [])],
});

export const FGVQA_PREDICTIONS_MEDIA_TYPE = 'application/x-twinflow-fgvqa-predictions+jsonl';

export const PREDICT_BACKENDS = ['openai', 'lmms-eval', 'embedding-baseline'] as const;

const noComma = (what: string) => z.string().min(1).refine((v) => !v.includes(','), `${what} cannot hold a comma (lmms-eval splits --model_args on commas)`);

export const lmmsEvalInputs = z.strictObject({
  python: z.string().min(1).default('python')
    .describe('Python interpreter of the environment on the GPU host where lmms-eval (and, for processes > 1, accelerate) is installed, e.g. /opt/lmms-eval/.venv/bin/python. @default python'),
  model: z.string().regex(/^[A-Za-z0-9_.-]+$/).describe('lmms-eval model name (--model), e.g. qwen2_5_vl, internvl3, llava_onevision.'),
  modelArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([noComma('a value'), z.number(), z.boolean()])).default({})
    .describe('--model_args as key: value, e.g. {pretrained: Qwen/Qwen2.5-VL-3B-Instruct, max_pixels: 1605632, attn_implementation: flash_attention_2}. @default {}'),
  pretrained: artifactRefSchema.optional()
    .describe("A model folder artifact (verl/grpo's or llamafactory/sft's `model`): pulled onto the GPU host and passed as pretrained=<its folder>, over modelArgs.pretrained."),
  processes: z.number().int().min(1).max(64).default(1)
    .describe('GPU processes; above 1 the run is `python -m accelerate.commands.launch --num_processes=N -m lmms_eval ...` (accelerate launch). @default 1'),
  batchSize: z.number().int().min(1).max(1024).default(1).describe('--batch_size per process. @default 1'),
  extraArgs: z.array(z.string()).default([])
    .describe('More lmms-eval flags, appended as given, e.g. ["--verbosity", "DEBUG"] or ["--use_cache", "/scratch/lmms-cache"]. @default []'),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({})
    .describe('Environment variables added for the run, e.g. {HF_HOME: /scratch/hf, CUDA_VISIBLE_DEVICES: "0,1"}. @default {}'),
});

export const baselineInputs = z.strictObject({
  model: z.string().min(1).default(DEFAULT_EMBED_MODEL)
    .describe(`ONNX image encoder with its .preprocess.json beside it. @default ${DEFAULT_EMBED_MODEL}`),
  threshold: z.number().min(-1).max(1).optional().describe('Answer "yes" from this embedding cosine up (give this or calibrate).'),
  calibrate: jsonlInput.optional()
    .describe('Labelled pair queries (fgvqa/build JSONL) to choose the threshold on: the cosine that answers most of them right. Never the queries being predicted.'),
});

export const predictInputs = z.strictObject({
  queries: jsonlInput.describe('FGVQA queries (the output of fgvqa/build, or a JSONL path).'),
  backend: z.enum(PREDICT_BACKENDS).default('openai').describe(
    'openai: any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, hosted APIs), set endpoint and model. ' +
    'lmms-eval: runs `python -m lmms_eval` on a GPU host (the stage goes to queue gpu unless it names one; lmms-eval must be installed there), set lmmsEval. ' +
    'embedding-baseline: image-embedding cosine against a threshold, in the worker (no VLM), set baseline. @default openai'),
  endpoint: z.string().url().optional().describe('Base URL of the API, e.g. http://127.0.0.1:8000/v1 (requests go to ENDPOINT/chat/completions). Backend openai: required.'),
  model: z.string().min(1).optional().describe('The model name the endpoint serves. Backend openai: required.'),
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).default('OPENAI_API_KEY')
    .describe('Environment variable on the worker holding the API key (sent as a Bearer token, never logged); absent: no key. @default OPENAI_API_KEY'),
  concurrency: z.number().int().min(1).max(256).default(8).describe('Requests in flight at once. @default 8'),
  maxTokens: z.number().int().min(1).max(32_768).default(1024).describe('New tokens per answer (greedy decoding; openai and lmms-eval). @default 1024'),
  timeoutSeconds: z.number().min(1).max(3600).default(120).describe('Per-request timeout. @default 120'),
  retries: z.number().int().min(0).max(20).default(5).describe('Retries of a request after 429, 5xx, a timeout or an unreadable answer, with backoff. @default 5'),
  lmmsEval: lmmsEvalInputs.optional().describe('Backend lmms-eval: the environment, model and launch of the run.'),
  baseline: baselineInputs.optional().describe('Backend embedding-baseline: the encoder and the threshold, given or calibrated on held-out labelled pairs.'),
}).superRefine((w, ctx) => {
  const need = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
  const only = (field: 'endpoint' | 'model' | 'lmmsEval' | 'baseline', backend: string) => {
    if (w[field] !== undefined && w.backend !== backend) need(field, `${field} is read only by backend ${backend}; this stage uses backend ${w.backend}`);
  };
  only('endpoint', 'openai');
  only('model', 'openai');
  only('lmmsEval', 'lmms-eval');
  only('baseline', 'embedding-baseline');
  if (w.backend === 'openai') {
    if (w.endpoint === undefined) need('endpoint', 'backend openai needs endpoint: the base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1');
    if (w.model === undefined) need('model', 'backend openai needs model: the model name the endpoint serves');
  } else if (w.backend === 'lmms-eval') {
    if (w.lmmsEval === undefined) need('lmmsEval', 'backend lmms-eval needs lmmsEval: { model: qwen2_5_vl, modelArgs: { pretrained: ... }, python: the interpreter that has lmms-eval }');
  } else if (w.baseline?.threshold === undefined && w.baseline?.calibrate === undefined) {
    need('baseline', 'backend embedding-baseline needs baseline.threshold or baseline.calibrate (labelled pair queries held out from those predicted); ' +
      'it never calibrates on the queries it answers, since that would read their labels');
  } else if (w.baseline.threshold !== undefined && w.baseline.calibrate !== undefined) {
    need('baseline', 'give baseline.threshold or baseline.calibrate, not both');
  }
});
export type PredictInputs = z.infer<typeof predictInputs>;

export const predictOutputs = z.strictObject({
  predictions: artifactRefSchema.describe('JSONL: {"id", "output"}, in query order.'),
  counts: z.record(z.string(), z.number()).describe('queries, answered, resumed (kept from an earlier attempt); openai: requests, retries; lmms-eval: asked (queries in this run).'),
  lmmsEval: z.strictObject({
    samples: z.string().describe('Path of the samples JSONL lmms-eval wrote ({output_path}/{model}/{date_id}_samples_{task}.jsonl).'),
    results: z.string().optional().describe('Path of its {date_id}_results.json (versions, config, timings).'),
    task: z.string().describe('The task folder written for the run (task YAML, utils.py, the queries as a JSON dataset).'),
  }).optional().describe('Backend lmms-eval: the files of the run that answered the last queries (absent when every answer was kept from an earlier attempt).'),
  baseline: z.strictObject({
    threshold: z.number().describe('The cosine from which a pair is answered "yes".'),
    calibration: z.strictObject({ pairs: z.number(), accuracy: z.number() }).optional()
      .describe('When calibrated: labelled pairs used and the share of them the threshold answers right.'),
  }).optional().describe('Backend embedding-baseline: the threshold used.'),
});

/** The stage's queue when it names none: lmms-eval needs a GPU host. */
export function predictQueue(w: Record<string, unknown>): string | undefined {
  return w.backend === 'lmms-eval' ? 'gpu' : undefined;
}

export const predictKind = defineKind({
  uses: 'fgvqa/predict',
  version: '1',
  description:
    'Ask a model every FGVQA query: an OpenAI-compatible chat endpoint (images as data URLs, greedy, bounded concurrency, retries), ' +
    'lmms-eval on a GPU host (its real command line on a task folder written for the queries; needs lmms-eval installed there, on queue gpu by default), ' +
    'or the embedding baseline (image cosine vs a threshold). Answers are kept as they arrive, so a stopped stage resumes where it was.',
  with: predictInputs,
  outputs: predictOutputs,
  defaultQueue: 'cpu',
  queueFor: predictQueue,
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 24 * 3_600_000,
  readsPaths: (w) => {
    const paths = [w.queries].filter((p): p is string => typeof p === 'string');
    if (w.backend === 'lmms-eval') {
      // A local model folder (modelArgs.pretrained), retrained in place, is asked again.
      const pretrained = ((w.lmmsEval as Record<string, unknown> | undefined)?.modelArgs as Record<string, unknown> | undefined)?.pretrained;
      return [...paths, ...[pretrained].filter((p): p is string => typeof p === 'string' && (p.startsWith('/') || p.startsWith('.')))];
    }
    if (w.backend !== 'embedding-baseline') return paths;
    const b = (w.baseline ?? {}) as Record<string, unknown>;
    const model = typeof b.model === 'string' ? b.model : DEFAULT_EMBED_MODEL;
    return [...paths, model, preprocessPathFor(model), ...[b.calibrate].filter((p): p is string => typeof p === 'string')];
  },
});

export const FGVQA_RESULTS_MEDIA_TYPE = 'application/x-twinflow-fgvqa-results+jsonl';

export const scoreInputs = z.strictObject({
  queries: z.union([jsonlInput, z.array(jsonlInput).min(1)])
    .describe('FGVQA queries, JSONL: {"id", "source", "type": "pair"|"multi", "images", "question", "answer"}; a list (e.g. one per source) is read as one.'),
  predictions: z.union([jsonlInput, z.array(jsonlInput).min(1)]).describe('Model outputs, JSONL: {"id", "output"}; a list is read as one.'),
  resamples: z.number().int().min(100).max(100_000).default(1000).describe('Bootstrap resamples per number. @default 1000'),
  confidence: z.number().gt(0.5).lt(1).default(0.95).describe('Confidence of the bootstrap intervals. @default 0.95'),
  seed: z.number().int().default(0).describe('Seeds the bootstrap. @default 0'),
});
export type ScoreInputs = z.infer<typeof scoreInputs>;

const cell = z.strictObject({ accuracy: z.number(), correct: z.number(), n: z.number(), missing: z.number(), ci: z.tuple([z.number(), z.number()]) });
const summary = z.strictObject({
  sources: z.record(z.string(), z.strictObject({ pair: cell.optional(), multi: cell.optional(), total: cell })),
  mean: z.strictObject({ accuracy: z.number(), ci: z.tuple([z.number(), z.number()]) }),
});

export const scoreOutputs = z.strictObject({
  results: z.string().describe('Path of the per-query results, JSONL: {"id", "source", "type", "parsed", "answer", "correct"}.'),
  files: z.strictObject({ results: artifactRefSchema }).describe('The results file in the artifact store.'),
  summary: summary.describe('Accuracy in % per source (pair, multi, total) and the mean of totals, each with a bootstrap interval.'),
  strict: summary.describe('The same, counting only answers inside <answer></answer> tags (never above summary).'),
  counts: z.record(z.string(), z.number()).describe('queries, predictions, scored, missing, unknown, duplicates, malformed.'),
  problems: z.array(z.string()).describe('What was wrong with the predictions (line numbers), at most 20 lines.'),
});

export const scoreKind = defineKind({
  uses: 'fgvqa/score',
  version: '1',
  description:
    'Score model outputs against FGVQA queries with the published rules (first <answer> span, yes/no words and synonyms; ' +
    'a lone 0-3 digit for multi), plus a strict variant, per source with bootstrap confidence intervals.',
  with: scoreInputs,
  outputs: scoreOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  readsPaths: (w) => [w.queries, w.predictions].flat().filter((p): p is string => typeof p === 'string'),
});

export const fgvqaKinds = [buildKind, predictKind, scoreKind] as const;
