/**
 * pipelines/demo.yaml end to end on the real dev server, on the catalog setup builds in
 * data/demo/ (real photos from Debian packages):
 * - the whole construction succeeds without a person: each automatic decision is marked
 *   automatic and says its policy; the duplicate listings are merged; the dataset folder
 *   holds Twin and Twin-Eval with every export, on disjoint instances;
 * - a second run is all cache hits;
 * - with interactive=true the run stops at each approval gate and goes on once a person
 *   approves.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { Decision } from '../../activities/review/items.js';
import type { ArtifactRef } from '../../engine/types.js';
import { approveUpdate, type RunStatus } from '../../workflows/messages.js';
import { startHarness, summary, type Harness } from './harness.js';

const repo = path.resolve(import.meta.dirname, '../..');
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
    expect(['confirm-duplicates', 'confirm-hard-negatives', 'confirm-generated'].map((id) => first.stages[id]!.state)).toEqual(['skipped', 'skipped', 'skipped']);

    const store = new ArtifactStore(h.home.artifactsDir);
    for (const stage of ['decide-duplicates', 'decide-hard-negatives', 'decide-generated']) {
      const out = outputs(first, stage) as { decisions: ArtifactRef; policy: string; counts: { items: number; accepted: number } };
      expect(out.counts.items, stage).toBeGreaterThan(0);
      expect(out.counts.accepted, stage).toBeGreaterThan(0);
      const decisions = await lines<Decision>(store.resolve(out.decisions));
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

  it('stops at each gate when interactive and goes on when a person approves', async () => {
    const runId = await h.submit(yaml.replace(/interactive: false/, 'interactive: true'));
    const handle = h.env.client.workflow.getHandle(runId);
    for (const gate of ['confirm-duplicates', 'confirm-hard-negatives', 'confirm-generated']) {
      const waiting = await h.waitFor(runId, `${gate} waiting`, (s) => s.stages[gate]!.state === 'waiting', 120_000);
      expect(waiting.stages.assemble!.state).toBe('pending');
      await handle.executeUpdate(approveUpdate, { args: [{ stage: gate, by: 'ana', note: 'looked at them' }] });
    }
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages['confirm-generated']!.approval?.by).toBe('ana');
  }, 300_000);
});
