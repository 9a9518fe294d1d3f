/*
 * report/plot: the per-source bar chart (with bootstrap intervals) and the data-scaling
 * curve, as SVG and PNG; the scaling chart refuses models without a size.
 */
import fs from 'node:fs/promises';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const env = activitiesInTempHome('plot');
const plot = (w: Record<string, unknown>, stage: string) => runStage(env.acts['report/plot'], 'report/plot', w, stage);
const summary = (totals: Record<string, number>, mean: number) => ({
  sources: Object.fromEntries(Object.entries(totals).map(([s, t]) => [s, { total: { accuracy: t, ci: [t - 2.5, t + 2.5] } }])),
  mean: { accuracy: mean, ci: [mean - 1, mean + 1] },
});

it('draws accuracy per source for each model, as SVG and PNG', async () => {
  const models = [
    { name: 'Qwen2.5-VL-3B', summary: summary({ 'twin-eval': 50.1, ilias: 43.5, landmarks: 53.9, met: 55.5, cub: 60.7, inquire: 54.4 }, 53.0) },
    { name: '+Twin', summary: summary({ 'twin-eval': 67.3, ilias: 61.8, landmarks: 57.9, met: 66.0, cub: 75.1, inquire: 73.7 }, 67.0) },
  ];
  const out = (await plot({ models }, 'bars')).outputs as unknown as { svg: string; png: string; files: Record<string, unknown> };
  const svg = await fs.readFile(out.svg, 'utf8');
  for (const text of ['Twin-Eval', 'INQUIRE', 'Mean', '+Twin', 'Qwen2.5-VL-3B', 'accuracy (%)']) expect(svg, text).toContain(text);
  // One bar and one interval whisker per model and column (six sources and the Mean).
  expect(svg.match(/aria-roledescription="bar"/g)).toHaveLength(14);
  const png = await sharp(out.png).metadata();
  expect(png.format).toBe('png');
  expect(png.width).toBeGreaterThan(500);
  expect(Object.keys(out.files).sort()).toEqual(['bars.png', 'bars.svg']);
});

it('draws the scaling curve on a log axis, and needs a size for every model', async () => {
  const sizes = [5_000, 50_000, 250_000, 561_000];
  const models = sizes.map((size, i) => ({ name: `${size / 1000}K`, size, summary: summary({ cub: 60 + i * 4 }, 55 + i * 4) }));
  const out = (await plot({ chart: 'scaling', models }, 'scaling')).outputs as unknown as { svg: string };
  const svg = await fs.readFile(out.svg, 'utf8');
  for (const text of ['training queries', 'mean accuracy (%)', '561K', '5K']) expect(svg, text).toContain(text);
  const err = await failure(plot({ chart: 'scaling', models: [{ name: 'x', summary: summary({ cub: 1 }, 1) }] }, 'scaling-bad'));
  expect(err.message).toMatch(/with.models: the scaling chart needs a size for every model/);
});
