/*
 * pipelines/fgvqa.yaml end to end on the dev server: the six FGVQA sources, each written
 * by the test in its own layout (CUB index files, GLDv2 train.csv, MET ground truth, ILIAS
 * webdataset shards, INQUIRE Parquet, a twin/assemble eval split), a "base" and a
 * "post-trained" model (the embedding baseline served over HTTP at two thresholds), the
 * published scoring rules over all six, and Table 1 with deltas plus a chart.
 * - fgvqa/predict's lmms-eval backend in a pipeline: scheduled on queue gpu, its command line
 *   run against test/fakes/fake-lmms-eval-python (a fake that checks the arguments and writes
 *   lmms-eval's samples layout; no model runs), the answers scored.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { calibrateThreshold, ImageEncoder } from '../../activities/fgvqa/baseline.js';
import { startBaselineServer } from '../../activities/fgvqa/baseline-server.js';
import { dot } from '../../activities/embed/matrix.js';
import { submitPipeline } from '../../cli/submit.js';
import type { RunStatus } from '../../workflows/messages.js';
import {
  writeCubDataset, writeIliasDataset, writeInquireDataset, writeLandmarksDataset, writeMetDataset, writeTwinEvalDataset,
} from '../support/fgvqa-datasets.js';
import { startHarness, summary, type Harness } from './harness.js';

const repo = path.resolve(import.meta.dirname, '../..');
const SOURCES = ['cub', 'landmarks', 'met', 'ilias', 'inquire', 'twin-eval'];
let h: Harness;
let data: string;

beforeAll(async () => {
  // A cpu worker and a "GPU host" worker, so the lmms-eval stage goes where GPU stages go.
  h = await startHarness({ queues: ['cpu', 'gpu'] });
  data = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-fgvqa-data-'));
}, 120_000);
afterAll(async () => {
  await h?.stop();
  if (data) await fs.rm(data, { recursive: true, force: true });
});

const outputs = (run: RunStatus, stage: string) => run.stages[stage]!.outputs as Record<string, unknown>;

it('builds all six sources, asks two models, scores them together and writes Table 1 with deltas', async () => {
  const roots: Record<string, string> = {};
  for (const s of SOURCES) roots[s] = path.join(data, s);
  await writeCubDataset(roots.cub!, 6, 5);
  await writeLandmarksDataset(roots.landmarks!, 6, 5);
  await writeMetDataset(roots.met!, 6, 5);
  await writeIliasDataset(roots.ilias!, [[0, 1, 2], [3, 4, 5]], 5);
  await writeInquireDataset(roots.inquire!, 6, 5);
  await writeTwinEvalDataset(roots['twin-eval']!, 6, 5);

  // The "post-trained" model: a threshold calibrated on labelled MET pairs; the "base" one says yes to almost nothing.
  const encoder = await ImageEncoder.open(path.join(repo, 'models/mobilenet_v2_mid.onnx'));
  const met = (id: number, n: number) => path.join(roots.met!, 'images', 'MET', String(1000 + id), `${n}.jpg`);
  const labelled: Array<{ cosine: number; same: boolean }> = [];
  for (let a = 0; a < 6; a++) {
    for (const [b, n] of [[a, 1], [(a + 1) % 6, 0], [(a + 3) % 6, 2]] as const) {
      const [x, y] = await encoder.embed([met(a, 0), met(b, n)]);
      labelled.push({ cosine: dot(x!, y!), same: a === b });
    }
  }
  const { threshold } = calibrateThreshold(labelled);
  const base = await startBaselineServer({ encoder, threshold: 0.9999, port: 0 });
  const post = await startBaselineServer({ encoder, threshold, port: 0 });
  try {
    const yaml = await fs.readFile(path.join(repo, 'pipelines/fgvqa.yaml'), 'utf8');
    const pipeline = h.compile(yaml, {
      cub_root: roots.cub!, landmarks_root: roots.landmarks!, met_root: roots.met!, ilias_root: roots.ilias!,
      inquire_root: roots.inquire!, twin_eval_root: roots['twin-eval']!, pairs: '8', multi: '8',
      base_endpoint: base.url, base_model: 'embedding-baseline', post_endpoint: post.url, post_model: 'embedding-baseline', concurrency: '4',
    });
    const run = await h.result(await submitPipeline(h.session, pipeline));
    expect(run.state, JSON.stringify(summary(run))).toBe('succeeded');
    expect(Object.keys(run.stages)).toHaveLength(22);

    type Cell = { accuracy: number; n: number };
    type Summary = { sources: Record<string, { pair: Cell; multi: Cell; total: Cell }>; mean: { accuracy: number } };
    const scores = Object.fromEntries(['base', 'post'].map((m) => [m, outputs(run, `score-${m}`) as { summary: Summary; counts: Record<string, number> }]));
    for (const m of ['base', 'post']) {
      expect(scores[m]!.counts, m).toMatchObject({ queries: 96, scored: 96, missing: 0, unknown: 0 });
      expect(Object.keys(scores[m]!.summary.sources).sort()).toEqual([...SOURCES].sort());
      for (const s of SOURCES) expect(scores[m]!.summary.sources[s], `${m} ${s}`).toMatchObject({ pair: { n: 8 }, multi: { n: 8 }, total: { n: 16 } });
    }
    // The base model says "no" and "0" to nearly everything: right for about half the pairs and a quarter of the multi queries.
    const means = { base: scores.base!.summary.mean.accuracy, post: scores.post!.summary.mean.accuracy };
    expect(means.base, JSON.stringify(means)).toBeLessThan(55);
    expect(means.post, JSON.stringify(means)).toBeGreaterThan(means.base + 20);

    const table = await fs.readFile((outputs(run, 'table') as { markdown: string }).markdown, 'utf8');
    expect(table).toContain('FGVQA (Table 1)');
    for (const name of ['Twin-Eval', 'ILIAS', 'Landmarks', 'MET', 'CUB', 'INQUIRE', 'Mean']) expect(table).toContain(name);
    expect(table).toMatch(/\| Qwen2\.5-VL-3B \|/);
    expect(table).toMatch(/\| \+ Twin \|/);
    expect(table).toMatch(/\| Δ \+ Twin vs Qwen2\.5-VL-3B( \| \+\d+\.\d){19} \|/);
    await fs.access((outputs(run, 'chart') as { png: string }).png);
  } finally {
    await Promise.all([base.close(), post.close()]);
    await encoder.close();
  }
}, 600_000);

it('runs the lmms-eval backend on the gpu queue inside a pipeline and scores what it answered', async () => {
  const root = path.join(data, 'met-lmms');
  await writeMetDataset(root, 6, 5);
  const yaml = `
name: fgvqa-lmms-eval
stages:
  build:
    uses: fgvqa/build
    with: { source: met, root: ${JSON.stringify(root)}, pairs: 8, multi: 4 }
  predict:
    uses: fgvqa/predict
    with:
      queries: \${{ stages.build.outputs.queries }}
      backend: lmms-eval
      lmmsEval:
        python: ${JSON.stringify(path.join(repo, 'test/fakes/fake-lmms-eval-python'))}
        model: qwen2_5_vl
        modelArgs: { pretrained: Qwen/Qwen2.5-VL-3B-Instruct }
  score:
    uses: fgvqa/score
    with:
      queries: \${{ stages.build.outputs.queries }}
      predictions: \${{ stages.predict.outputs.predictions }}
`;
  const run = await h.result(await h.submit(yaml));
  expect(run.state, JSON.stringify(summary(run))).toBe('succeeded');
  expect(run.stages.predict!.queue).toBe('gpu');
  expect(run.stages.build!.queue).toBe('cpu');
  const predict = outputs(run, 'predict') as { counts: Record<string, number>; lmmsEval: { samples: string } };
  expect(predict.counts).toMatchObject({ queries: 12, answered: 12, asked: 12 });
  expect(predict.lmmsEval.samples).toMatch(/\/Qwen__Qwen2\.5-VL-3B-Instruct\/[^/]+_samples_twinflow_fgvqa_predict\.jsonl$/);
  // The fake answers yes to everything: right on the 4 yes pairs, wrong on the 4 no pairs, and no multi answer.
  const score = outputs(run, 'score') as { counts: Record<string, number>; summary: { sources: Record<string, { pair: { accuracy: number } }> } };
  expect(score.counts).toMatchObject({ queries: 12, scored: 12, missing: 0 });
  expect(score.summary.sources.met!.pair.accuracy).toBe(50);
}, 300_000);
