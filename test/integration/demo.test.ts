/**
 * pipelines/demo.yaml end to end on the real dev server, on the catalog setup builds in
 * data/demo/ (real photos from Debian packages):
 * - the whole construction succeeds without a person: each automatic decision is marked
 *   automatic and says its policy; the duplicate listings are merged; the dataset folder
 *   holds Twin and Twin-Eval with every export, on disjoint instances;
 * - a second run is all cache hits;
 * - with interactive=true each of the three reviews waits for people, and the run goes on
 *   once every item is decided (here in bulk, as `twinflow review decide` does).
 * - pipelines/fgvqa-eval.yaml on the demo's Twin-Eval: build -> predict against the embedding
 *   baseline served over HTTP (`twinflow serve-baseline`'s server) -> score -> table and chart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { Decision } from '../../activities/review/items.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { RunStatus } from '../../workflows/messages.js';
import { decideItems, reviewProgress } from '../../review/queue-client.js';
import { ImageEncoder } from '../../activities/fgvqa/baseline.js';
import { startBaselineServer } from '../../activities/fgvqa/baseline-server.js';
import { submitPipeline } from '../../cli/submit.js';
import { startHarness, summary, type Harness } from './harness.js';

const repo = path.resolve(import.meta.dirname, '../..');
const REVIEWS = ['review-duplicates', 'review-hard-negatives', 'review-generated'];
const DEMO = path.join(repo, 'pipelines/demo.yaml');
let h: Harness;
let yaml: string;
let first: RunStatus;

beforeAll(async () => {
  await fs.access(path.join(repo, 'data/demo/meta_demo.jsonl')).catch(() => {
    throw new Error('data/demo/ is missing: run `npm run setup` (it builds the demo catalog) before the tests');
  });
  h = await startHarness();
  yaml = await fs.readFile(DEMO, 'utf8');
}, 120_000);
afterAll(async () => h?.stop());

const outputs = (run: RunStatus, stage: string) => run.stages[stage]!.outputs as Record<string, unknown>;
const lines = async <T>(file: string): Promise<T[]> =>
  (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

describe('pipelines/demo.yaml', () => {
  it('builds Twin and Twin-Eval from the demo catalog with every decision automatic and recorded', async () => {
    const runId = await h.submit(yaml);
    first = await h.result(runId);
    expect(first.state, JSON.stringify(summary(first))).toBe('succeeded');
    const store = new ArtifactStore(h.home.artifactsDir);
    for (const stage of REVIEWS) {
      const out = outputs(first, stage) as { decisions: ArtifactRef; policy: string; outcome: string; counts: { items: number; accept: number } };
      expect(out.outcome, stage).toBe('policy');
      expect(out.counts.items, stage).toBeGreaterThan(0);
      expect(out.counts.accept, stage).toBeGreaterThan(0);
      const decisions = await lines<Decision>((await store.file(out.decisions)));
      expect(decisions.every((d) => d.automatic && d.by.startsWith('policy:demo-') && d.note === out.policy), stage).toBe(true);
    }
    // The catalog lists one print twice; dedupe + the policy merge it.
    const merge = outputs(first, 'merge') as { counts: { before: number; after: number; merged: number } };
    expect(merge.counts.merged).toBeGreaterThanOrEqual(1);
    expect(merge.counts.after).toBeLessThan(merge.counts.before);

    const assemble = outputs(first, 'assemble') as { dataset: string; counts: Record<'train' | 'eval', Record<string, number>> };
    for (const split of ['train', 'eval'] as const) {
      expect(assemble.counts[split]!.positive, split).toBeGreaterThan(0);
      expect(assemble.counts[split]!.total, split).toBeGreaterThan(assemble.counts[split]!.positive!);
    }
    const files = await fs.readdir(assemble.dataset, { recursive: true });
    expect(files.some((f) => f.endsWith('.parquet'))).toBe(true);
    expect(files.some((f) => f.startsWith('images/'))).toBe(true);
  }, 600_000);

  it('serves every stage from the cache on a second run', async () => {
    const again = await h.result(await h.submit(yaml));
    expect(again.state).toBe('succeeded');
    const ran = again.order.filter((id) => !['cached', 'skipped'].includes(again.stages[id]!.state));
    expect(ran).toEqual([]);
  }, 300_000);

  it('hands each review to people when interactive and goes on once they have decided every item', async () => {
    process.env.TWINFLOW_HOME = h.home.root;
    const store = new ArtifactStore(h.home.artifactsDir);
    const runId = await h.submit(yaml.replace(/interactive: false/, 'interactive: true'));
    for (const stage of REVIEWS) {
      const waiting = await h.waitFor(runId, `${stage} waiting`, (s) => s.stages[stage]!.waitingFor === 'review', 120_000);
      expect(waiting.stages.assemble!.state).toBe('pending');
      const progress = await reviewProgress(h.session, runId, stage);
      // People decide like the policies would: the same pairs, the same dataset.
      const items = await lines<{ id: string; score?: number }>((await store.file(progress.items)));
      const decisions = items.map((item) => ({ id: item.id, choice: stage !== 'review-duplicates' || (item.score ?? 0) >= 0.9 ? 'accept' : 'reject' }));
      for (let i = 0; i < decisions.length; i += 500) await decideItems(h.session, runId, stage, 'ana', decisions.slice(i, i + 500));
    }
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    const out = outputs(done, 'review-generated') as { outcome: string; reviewers: Record<string, number>; counts: { people: number; items: number } };
    expect(out).toMatchObject({ outcome: 'complete', reviewers: { ana: out.counts.items } });
    expect(out.counts.people).toBe(out.counts.items);
  }, 300_000);

  it('evaluates the demo\'s Twin-Eval end to end against the embedding baseline over HTTP', async () => {
    const dataset = (outputs(first, 'assemble') as { dataset: string }).dataset;
    const encoder = await ImageEncoder.open(path.join(repo, 'models/mobilenet_v2_mid.onnx'));
    const server = await startBaselineServer({ encoder, threshold: 0.75, port: 0 });
    try {
      const eval_ = await fs.readFile(path.join(repo, 'pipelines/fgvqa-eval.yaml'), 'utf8');
      const pipeline = h.compile(eval_, { root: dataset, pairs: '8', multi: '0', endpoint: server.url, concurrency: '4' });
      const run = await h.result(await submitPipeline(h.session, pipeline));
      expect(run.state, JSON.stringify(summary(run))).toBe('succeeded');
      const score = outputs(run, 'score') as { counts: Record<string, number>; summary: { sources: Record<string, { pair: { n: number; accuracy: number } }> } };
      expect(score.counts).toMatchObject({ queries: 8, scored: 8, missing: 0, unknown: 0 });
      expect(score.summary.sources['twin-eval']!.pair.n).toBe(8);
      const predictions = outputs(run, 'predict') as { counts: Record<string, number> };
      expect(predictions.counts).toMatchObject({ queries: 8, answered: 8 });
      const table = await fs.readFile((outputs(run, 'table') as { markdown: string }).markdown, 'utf8');
      expect(table).toMatch(/\| embedding-baseline \| [\d.]+ \| – \| [\d.]+ \| [\d.]+ \|/);
      expect(table).toContain('embedding-baseline (strict)');
      await fs.access((outputs(run, 'chart') as { png: string }).png);
    } finally {
      await server.close();
      await encoder.close();
    }
  }, 300_000);
});
