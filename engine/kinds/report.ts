import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/** The FGVQA sources in Table 1's order; other sources follow in the order first seen. */
export const TABLE1_SOURCES = ['twin-eval', 'ilias', 'landmarks', 'met', 'cub', 'inquire'] as const;

const cell = z.looseObject({ accuracy: z.number(), ci: z.tuple([z.number(), z.number()]).optional() });
const scoreSummary = z.looseObject({
  sources: z.record(z.string(), z.looseObject({ pair: cell.optional(), multi: cell.optional(), total: cell })),
  mean: z.looseObject({ accuracy: z.number(), ci: z.tuple([z.number(), z.number()]).optional() }),
});

const taskMetrics = z.record(z.string(), z.record(z.string(), z.number()));
const probeResults = z.record(z.string(), z.looseObject({ linear: z.number(), knn: z.number() }));

export const tableInputs = z.strictObject({
  models: z.array(z.strictObject({
    name: z.string().min(1).max(100).describe('The row label, e.g. Qwen2.5-VL-3B or +Twin.'),
    summary: scoreSummary.optional().describe('Table 1: the `summary` (or `strict`) output of an fgvqa/score stage.'),
    metrics: taskMetrics.optional().describe("Tables 4 and 6: the `metrics` output of an lmms-eval/run stage (per task, per metric)."),
    probe: probeResults.optional().describe('Table 5: the `datasets` output of a probe/encoder stage (per dataset, linear and kNN accuracy in %).'),
  }).refine((m) => [m.summary, m.metrics, m.probe].filter((v) => v !== undefined).length === 1, { message: 'a model needs either summary (fgvqa/score) or metrics (lmms-eval/run) or probe (probe/encoder), one of them' }))
    .min(1).max(50).describe('One row per model, in this order; all with summary, all with metrics, or all with probe.'),
  base: z.string().optional().describe('The model every other row is compared with (a delta row each); none when absent.'),
  title: z.string().max(200).optional().describe('Caption of the table. @default FGVQA accuracy (%), or General benchmarks for metrics'),
  columns: z.array(z.strictObject({
    task: z.string().min(1),
    metric: z.string().min(1).optional().describe("Which of the task's metrics; default its first."),
    label: z.string().min(1).max(60).optional(),
  })).min(1).optional().describe("Metrics tables: the task columns in order. @default Table 4's tasks, then Table 6's, then any others, as the first model has them"),
  sources: z.array(z.string().min(1)).optional().describe('Column groups in order (Table 1: sources; Table 5: datasets). @default Table 1 order (Table 5: pets, sun397, cub, cifar100), then any others'),
  intervals: z.boolean().default(false).describe('Show each number\'s bootstrap interval beside it. @default false'),
});
export type TableInputs = z.infer<typeof tableInputs>;

export const tableOutputs = z.strictObject({
  markdown: z.string().describe('Path of table.md.'),
  html: z.string().describe('Path of table.html.'),
  json: z.string().describe('Path of table.json.'),
  files: z.record(z.string(), artifactRefSchema).describe('The three files in the artifact store.'),
  mean: z.record(z.string(), z.number()).describe('Mean of totals per model.'),
});

export const tableKind = defineKind({
  uses: 'report/table',
  version: '1',
  description: 'Table 1 of the paper for one or more models (fgvqa/score summaries: sources as column groups of Pair, Multi, Total, and the mean of totals), Tables 4 and 6 (lmms-eval/run metrics: a column per task, in %, and their mean), or Table 5 (probe/encoder results: datasets as column groups of Linear and kNN, and their means); deltas against a base model; as Markdown, HTML and JSON.',
  with: tableInputs,
  outputs: tableOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const plotInputs = z.strictObject({
  chart: z.enum(['bars', 'scaling']).default('bars')
    .describe('bars: Total accuracy per source (and Mean) for each model, with bootstrap intervals; scaling: Mean accuracy against training-set size. @default bars'),
  models: z.array(z.strictObject({
    name: z.string().min(1).max(100),
    summary: scoreSummary.describe('The `summary` output of an fgvqa/score stage.'),
    size: z.number().positive().optional().describe('Training queries behind this model (the scaling chart\'s x).'),
  })).min(1).max(50),
  title: z.string().max(200).optional().describe('Chart title.'),
}).superRefine((v, ctx) => {
  if (v.chart === 'scaling' && v.models.some((m) => m.size === undefined)) ctx.addIssue({ code: 'custom', path: ['models'], message: 'the scaling chart needs a size for every model' });
});

export const plotOutputs = z.strictObject({
  svg: z.string().describe('Path of the chart as SVG.'),
  png: z.string().describe('Path of the chart as PNG (rendered from the SVG).'),
  files: z.record(z.string(), artifactRefSchema),
});

export const plotKind = defineKind({
  uses: 'report/plot',
  version: '1',
  description: 'FGVQA charts as SVG and PNG (Vega-Lite): accuracy per source for each model with intervals, or the data-scaling curve.',
  with: plotInputs,
  outputs: plotOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
});

export const reportKinds = [tableKind, plotKind] as const;
