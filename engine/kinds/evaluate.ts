import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';
import { lmmsEvalInputs } from './fgvqa.js';
import { hostPaths } from './train.js';

/** Table 4's general VQA benchmarks as upstream lmms-eval names them (NLVR2 has no standalone upstream task). */
export const TABLE4_TASKS = ['realworldqa', 'pope', 'cv_bench', 'ai2d', 'seedbench', 'chartqa', 'textvqa_val', 'blink', 'mmmu_val', 'vlms_are_biased'] as const;
/** Table 6's text-only benchmarks. */
export const TABLE6_TASKS = ['mmlu', 'hellaswag', 'gsm8k'] as const;

export const lmmsEvalRunInputs = lmmsEvalInputs.extend({
  tasks: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'an lmms-eval task or group name')).min(1).default([...TABLE4_TASKS])
    .describe('lmms-eval task or group names (--tasks); default Table 4: realworldqa, pope, cv_bench, ai2d, seedbench, chartqa, textvqa_val, blink, mmmu_val, vlms_are_biased.'),
  limit: z.number().positive().optional().describe('--limit: at most this many documents per task (a fraction below 1), for a quick look.'),
  genKwargs: z.string().optional().describe("--gen_kwargs, e.g. max_new_tokens=1024,temperature=0; default: each task's own."),
});

const taskMetrics = z.record(z.string(), z.number());

export const lmmsEvalRunKind = defineKind({
  uses: 'lmms-eval/run',
  // 1: lmms-eval on its own tasks, metrics per task from the results file.
  version: '1',
  description:
    "Evaluate a model on lmms-eval's own tasks (Table 4's general VQA, Table 6's text QA, or any task name) on a GPU host, through the same " +
    "runner as fgvqa/predict's lmms-eval backend (an error lmms-eval reports and exits 0 on fails the stage), and read each task's metrics " +
    'from its results file.',
  with: lmmsEvalRunInputs,
  outputs: z.strictObject({
    metrics: z.record(z.string(), taskMetrics).describe('Per task, each metric as lmms-eval names it ("metric" for filter none, else "metric,filter"); stderr left out.'),
    results: artifactRefSchema.describe("lmms-eval's results JSON."),
    samples: z.record(z.string(), artifactRefSchema).describe('Per task, its samples file (--log_samples).'),
    counts: z.strictObject({ tasks: z.number().int().nonnegative(), samples: z.number().int().nonnegative() }),
  }),
  defaultQueue: 'gpu',
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 2 * 24 * 3_600_000,
  // A model folder named in modelArgs: retrained in place, it is evaluated again.
  readsPaths: (w) => hostPaths((w.modelArgs as Record<string, unknown> | undefined)?.pretrained).filter((p) => p.startsWith('/') || p.startsWith('.')),
});

export const evaluateKinds = [lmmsEvalRunKind] as const;
