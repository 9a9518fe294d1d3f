/*
 * report/table on the paper's own Table 1 totals (Qwen2.5-VL-3B before and after Twin):
 * - sources in Table 1's order whatever order the summaries list them in; missing numbers as a dash
 * - the delta row against the base model, signed, in points
 * - Markdown, HTML (two-row header, model names escaped) and JSON written and stored
 * - a base that is not among the models fails the stage, naming the models
 * - Tables 4 and 6 from lmms-eval/run metrics: a column per task in the paper's order, fractions as %,
 *   a chosen metric and label per column; mixing the two kinds of input is refused
 */
import fs from 'node:fs/promises';
import { expect, it } from 'vitest';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const env = activitiesInTempHome('table');

const summary = (totals: Record<string, number>, mean: number, pairCub?: number) => ({
  sources: Object.fromEntries(Object.entries(totals).reverse().map(([s, t]) => [s, { total: { accuracy: t, ci: [t - 3, t + 3] }, ...(s === 'cub' && pairCub ? { pair: { accuracy: pairCub } } : {}) }])),
  mean: { accuracy: mean },
});
const BASE = summary({ 'twin-eval': 50.1, ilias: 43.5, landmarks: 53.9, met: 55.5, cub: 60.7, inquire: 54.4 }, 53.0, 58.2);
const TWIN = summary({ 'twin-eval': 67.3, ilias: 61.8, landmarks: 57.9, met: 66.0, cub: 75.1, inquire: 73.7 }, 67.0, 71.0);

const table = (w: Record<string, unknown>) => runStage(env.acts['report/table'], 'report/table', w);

it('lays out Table 1 with deltas against the base model', async () => {
  const result = await table({ models: [{ name: 'Qwen2.5-VL-3B', summary: BASE }, { name: '+Twin <b>', summary: TWIN }], base: 'Qwen2.5-VL-3B' });
  const out = result.outputs as unknown as { markdown: string; html: string; json: string; files: Record<string, { sha256: string }>; mean: Record<string, number> };
  const md = (await fs.readFile(out.markdown, 'utf8')).split('\n');
  expect(md[2]).toBe('| Model | Twin-Eval Pair | Twin-Eval Multi | Twin-Eval Total | ILIAS Pair | ILIAS Multi | ILIAS Total | Landmarks Pair | Landmarks Multi | Landmarks Total | MET Pair | MET Multi | MET Total | CUB Pair | CUB Multi | CUB Total | INQUIRE Pair | INQUIRE Multi | INQUIRE Total | Mean |');
  expect(md[4]).toBe('| Qwen2.5-VL-3B | – | – | 50.1 | – | – | 43.5 | – | – | 53.9 | – | – | 55.5 | 58.2 | – | 60.7 | – | – | 54.4 | 53.0 |');
  expect(md[6]).toBe('| Δ +Twin <b> vs Qwen2.5-VL-3B | – | – | +17.2 | – | – | +18.3 | – | – | +4.0 | – | – | +10.5 | +12.8 | – | +14.4 | – | – | +19.3 | +14.0 |');
  const html = await fs.readFile(out.html, 'utf8');
  expect(html).toContain('<th colspan="3" scope="colgroup">Twin-Eval</th>');
  expect(html).toContain('<th scope="row">+Twin &lt;b&gt;</th>');
  expect(html).not.toContain('<b>');
  const json = JSON.parse(await fs.readFile(out.json, 'utf8'));
  expect(json.sources.map((s: { id: string }) => s.id)).toEqual(['twin-eval', 'ilias', 'landmarks', 'met', 'cub', 'inquire']);
  expect(json.deltas[0].mean).toBe(14);
  expect(Object.keys(out.files).sort()).toEqual(['table.html', 'table.json', 'table.md']);
  expect(out.mean).toEqual({ 'Qwen2.5-VL-3B': 53, '+Twin <b>': 67 });

  const withIntervals = (await table({ models: [{ name: 'm', summary: BASE }], intervals: true })).outputs as unknown as { markdown: string };
  expect(await fs.readFile(withIntervals.markdown, 'utf8')).toContain('| 50.1 [47.1, 53.1] |');
});

it('fails when the base is not one of the models', async () => {
  const err = await failure(table({ models: [{ name: 'a', summary: BASE }], base: 'b' }));
  expect(err.message).toMatch(/with.base b is not one of the models \(a\)/);
});

// Tables 4 and 6: lmms-eval/run metrics (made-up numbers in lmms-eval's shape).
const metrics = (pope: number, rwqa: number, mmlu: number) => ({
  mmlu: { acc: mmlu }, pope: { pope_accuracy: pope, pope_f1_score: pope - 0.02 }, realworldqa: { 'exact_match,flexible-extract': rwqa }, 'my-task': { score: 71.5 },
});

it("lays out Tables 4 and 6 from lmms-eval/run metrics: Table 4's tasks, then Table 6's, then others, in %, with deltas", async () => {
  const result = await table({ models: [{ name: 'base', metrics: metrics(0.861, 0.652, 0.655) }, { name: '+Twin', metrics: metrics(0.874, 0.66, 0.652) }], base: 'base' });
  const out = result.outputs as unknown as { markdown: string; mean: Record<string, number> };
  const md = (await fs.readFile(out.markdown, 'utf8')).split('\n');
  expect(md[0]).toBe('**General benchmarks**');
  expect(md[2]).toBe('| Model | RealWorldQA | POPE | MMLU | my-task | Mean |');
  expect(md[4]).toBe('| base | 65.2 | 86.1 | 65.5 | 71.5 | 72.1 |');
  expect(md[6]).toBe('| Δ +Twin vs base | +0.8 | +1.3 | −0.3 | ±0.0 | +0.4 |');
  expect(md[8]).toBe('RealWorldQA: realworldqa exact_match,flexible-extract (%); POPE: pope pope_accuracy (%); MMLU: mmlu acc (%); my-task: my-task score');
  expect(out.mean).toEqual({ base: 72.1, '+Twin': 72.5 });
  const picked = await table({ models: [{ name: 'base', metrics: metrics(0.861, 0.652, 0.655) }], columns: [{ task: 'pope', metric: 'pope_f1_score', label: 'POPE F1' }] });
  expect((await fs.readFile((picked.outputs as unknown as { markdown: string }).markdown, 'utf8')).split('\n')[4]).toBe('| base | 84.1 | 84.1 |');
});

it('refuses a table that mixes FGVQA summaries with lmms-eval metrics, and a column no model has', async () => {
  const mixed = await failure(table({ models: [{ name: 'a', summary: BASE }, { name: 'b', metrics: metrics(0.8, 0.6, 0.6) }] }));
  expect(mixed).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
  expect(mixed.message).toMatch(/mixes fgvqa\/score summaries \(a\) and lmms-eval\/run metrics \(b\); make one table of each/);
  const column = await failure(table({ models: [{ name: 'b', metrics: metrics(0.8, 0.6, 0.6) }], columns: [{ task: 'chartqa' }] }));
  expect(column.message).toMatch(/with.columns: no model has results for task chartqa/);
  const neither = await failure(table({ models: [{ name: 'c' }] }));
  expect(neither.message).toMatch(/a model needs either summary \(fgvqa\/score\) or metrics \(lmms-eval\/run\)/);
});
