/*
 * report/table's Table 5 layout from probe/encoder results:
 * - datasets in Table 5's order (Pets, SUN397, CUB, CIFAR-100) whatever order the results list them in,
 *   then any others; each a group of Linear and kNN, then the mean of each; a missing dataset as a dash
 * - the delta row against the base encoder, signed, in points; the stage's mean is the mean of every dataset cell
 * - Markdown and HTML (two-row header); mixing probe results with FGVQA summaries is refused
 */
import fs from 'node:fs/promises';
import { expect, it } from 'vitest';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const env = activitiesInTempHome('table-probe');
const table = (w: Record<string, unknown>) => runStage(env.acts['report/table'], 'report/table', w);
type Out = { markdown: string; html: string; json: string; mean: Record<string, number> };

const r = (linear: number, knn: number) => ({ linear, knn, C: 1, train: 10, test: 5, classes: 2, dims: 4 });
const BASE = { cifar100: r(80.04, 70), cub: r(60, 50.26), sun397: r(70, 65), pets: r(90, 85) };
const TWIN = { pets: r(91, 84), sun397: r(71.5, 65), cub: r(62, 50), cifar100: r(79, 71), mine: r(50, 40) };

it('lays out Table 5 with Linear and kNN per dataset, their means and deltas against the base', async () => {
  const out = (await table({ models: [{ name: 'CLIP', probe: BASE }, { name: '+Twin', probe: TWIN }], base: 'CLIP' })).outputs as unknown as Out;
  const md = (await fs.readFile(out.markdown, 'utf8')).split('\n');
  expect(md[0]).toBe('**Encoder probing, top-1 accuracy (%)**');
  expect(md[2]).toBe('| Model | Pets Linear | Pets kNN | SUN397 Linear | SUN397 kNN | CUB Linear | CUB kNN | CIFAR-100 Linear | CIFAR-100 kNN | mine Linear | mine kNN | Mean Linear | Mean kNN |');
  expect(md[4]).toBe('| CLIP | 90.0 | 85.0 | 70.0 | 65.0 | 60.0 | 50.3 | 80.0 | 70.0 | – | – | – | – |');
  expect(md[5]).toBe('| +Twin | 91.0 | 84.0 | 71.5 | 65.0 | 62.0 | 50.0 | 79.0 | 71.0 | 50.0 | 40.0 | 70.7 | 62.0 |');
  expect(md[6]).toBe('| Δ +Twin vs CLIP | +1.0 | −1.0 | +1.5 | ±0.0 | +2.0 | −0.3 | −1.0 | +1.0 | – | – | – | – |');
  expect(out.mean).toEqual({ CLIP: 0, '+Twin': 66.4 });
  const html = await fs.readFile(out.html, 'utf8');
  expect(html).toContain('<th colspan="2" scope="colgroup">CIFAR-100</th>');
  expect(html).toContain('<th scope="col">Linear</th><th scope="col">kNN</th>');
});

it('takes the datasets asked for, in that order, and refuses mixed inputs and unknown datasets', async () => {
  const out = (await table({ models: [{ name: 'CLIP', probe: BASE }], sources: ['cub', 'pets'], title: 'Probe' })).outputs as unknown as Out;
  const md = (await fs.readFile(out.markdown, 'utf8')).split('\n');
  expect(md[2]).toBe('| Model | CUB Linear | CUB kNN | Pets Linear | Pets kNN | Mean Linear | Mean kNN |');
  expect(md[4]).toBe('| CLIP | 60.0 | 50.3 | 90.0 | 85.0 | 75.0 | 67.7 |');
  expect(out.mean).toEqual({ CLIP: 71.3 });
  const mixed = await failure(table({ models: [{ name: 'a', probe: BASE }, { name: 'b', summary: { sources: {}, mean: { accuracy: 1 } } }] }));
  expect(mixed.message).toMatch(/mixes fgvqa\/score summaries \(b\) and probe\/encoder results \(a\); make one table of each/);
  const unknown = await failure(table({ models: [{ name: 'a', probe: BASE }], sources: ['inat'] }));
  expect(unknown.message).toMatch(/with\.sources: no model has probe results for inat/);
});
