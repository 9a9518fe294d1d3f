/**
 * A 100,000-item review decided in batches of 1,000 on the real dev server: every run of
 * the review workflow (continue-as-new chain) stays far below Temporal's history limits
 * (51,200 events / 50 MB; 2,000 updates per run), and every decision reaches the outputs.
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { decideItems } from '../../review/queue-client.js';
import { reviewWorkflowId } from '../../workflows/review-messages.js';
import { startHarness, type Harness } from './harness.js';
import { putReviewItems, reviewPipeline } from '../support/review-items.js';

const ITEMS = 100_000;
const BATCH = 1_000;
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  process.env.TWINFLOW_HOME = h.home.root;
});
afterAll(async () => h?.stop());

it('decides 100,000 items in batches without any review run nearing the history limits', { timeout: 600_000 }, async () => {
  const store = new ArtifactStore(h.home.artifactsDir);
  const { ref, ids } = await putReviewItems(store, ITEMS);
  const runId = await h.submit(reviewPipeline(ref));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review', 120_000);
  const started = Date.now();
  for (let i = 0; i < ITEMS; i += BATCH) {
    const batch = ids.slice(i, i + BATCH).map((id, k) => ({ id, choice: (i + k) % 3 ? 'accept' : 'reject', ...(k === 0 ? { note: `batch ${i / BATCH}` } : {}) }));
    const result = await decideItems(h.session, runId, 'check', `reviewer-${(i / BATCH) % 4}`, batch);
    expect(result.applied).toBe(batch.length);
  }
  const decideSeconds = (Date.now() - started) / 1000;
  const run = await h.result(runId);
  expect(run.state).toBe('succeeded');
  const out = run.stages.check!.outputs as { counts: Record<string, number>; decisions: { uri: string; sha256: string } };
  expect(out.counts).toMatchObject({ items: ITEMS, people: ITEMS, accept: ITEMS - Math.ceil(ITEMS / 3), reject: Math.ceil(ITEMS / 3) });
  const lines = (await fs.readFile((await store.file(out.decisions)), 'utf8')).split('\n').filter(Boolean).length;
  expect(lines).toBe(ITEMS);

  const runs = [];
  for await (const wf of h.env.client.workflow.list({ query: `WorkflowId = '${reviewWorkflowId(runId, 'check')}'` })) {
    runs.push({ events: wf.historyLength, bytes: Number(wf.historySize ?? 0) });
  }
  const interpreter = await h.env.client.workflow.getHandle(runId).describe();
  console.log(`100K review: ${decideSeconds.toFixed(1)} s of updates; ${runs.length} review runs; ` +
    `events per run max ${Math.max(...runs.map((r) => r.events))}, total ${runs.reduce((n, r) => n + r.events, 0)}; ` +
    `bytes per run max ${(Math.max(...runs.map((r) => r.bytes)) / 1e6).toFixed(2)} MB, total ${(runs.reduce((n, r) => n + r.bytes, 0) / 1e6).toFixed(2)} MB; ` +
    `interpreter ${interpreter.historyLength} events, ${(Number(interpreter.historySize) / 1e6).toFixed(2)} MB`);
  expect(runs.length).toBeGreaterThan(1);
  for (const r of runs) {
    expect(r.events).toBeLessThan(10_240);
    expect(r.bytes).toBeLessThan(10 * 1024 * 1024);
  }
  expect(interpreter.historyLength).toBeLessThan(200);
});
