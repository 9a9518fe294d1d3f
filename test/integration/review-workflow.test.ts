/**
 * `core/review` on the real dev server:
 * - people decide in batches; the run goes on with their decisions; the audit keeps every decision
 * - a decision sent twice is applied once; unknown items, bad choices, the wrong run and late decisions are refused
 * - quorum: two people per item, agreement and ties reported; claims hand different people different items
 * - undo of one's own decision reopens the item
 * - deadlines: fail (decisions kept for the retry), accept-remaining, keep-waiting
 * - a policy decides every item at once, marked automatic
 * - continue-as-new with tiny limits keeps every decision
 * - one person holds at most 50 items at once; released items go to others at once
 * - assignees keep others out (forbidden), names with control characters are refused,
 *   notes are kept as plain text, names nobody checked are marked unauthenticated
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { Decision } from '../../activities/review/items.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { AuditRecord } from '../../workflows/review-messages.js';
import { auditSnapshot, claimItems, decideItems, reviewProgress, ReviewRequestError } from '../../review/queue-client.js';
import { MAX_HELD_PER_REVIEWER } from '../../workflows/review-messages.js';
import { retryUpdate } from '../../workflows/messages.js';
import { startHarness, summary, type Harness } from './harness.js';
import { putReviewItems, reviewPipeline } from '../support/review-items.js';

type ReviewOut = { decisions: ArtifactRef; audit: ArtifactRef } & Record<string, unknown>;

let h: Harness;
let store: ArtifactStore;

beforeAll(async () => {
  h = await startHarness();
  store = new ArtifactStore(h.home.artifactsDir);
  process.env.TWINFLOW_HOME = h.home.root;
});
afterAll(async () => h?.stop());

const waitingReview = (runId: string) => h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
const jsonl = async <T>(ref: { uri: string; sha256: string }) =>
  (await fs.readFile((await store.file(ref)), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
const refused = async (call: Promise<unknown>) => {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ReviewRequestError);
  return err as ReviewRequestError;
};

describe('core/review', () => {
  it('takes batches of decisions, applies a repeated decision once, and hands the decisions on', async () => {
    const { ref, ids } = await putReviewItems(store, 5);
    const runId = await h.submit(reviewPipeline(ref));
    await waitingReview(runId);
    const first = await decideItems(h.session, runId, 'check', 'alice', [
      { id: ids[0]!, choice: 'accept', note: 'same mug' }, { id: ids[1]!, choice: 'reject' },
    ]);
    expect(first).toMatchObject({ applied: 2, duplicates: 0, progress: { decided: 2, total: 5, byReviewer: { alice: 2 } } });
    const again = await decideItems(h.session, runId, 'check', 'alice', [{ id: ids[0]!, choice: 'accept', note: 'same mug' }]);
    expect(again).toMatchObject({ applied: 0, duplicates: 1, progress: { decided: 2, votes: 2 } });
    await decideItems(h.session, runId, 'check', 'alice', ids.slice(2).map((id) => ({ id, choice: 'accept' })));
    const run = await h.result(runId);
    expect(run.state, JSON.stringify(summary(run))).toBe('succeeded');
    const out = run.stages.check!.outputs as unknown as ReviewOut;
    expect(out).toMatchObject({ outcome: 'complete', counts: { items: 5, people: 5, automatic: 0, accept: 4, reject: 1 }, reviewers: { alice: 5 } });
    const decisions = await jsonl<Decision>(out.decisions);
    expect(decisions.map((d) => [d.id, d.choice, d.by, d.automatic])).toEqual(ids.map((id, i) => [id, i === 1 ? 'reject' : 'accept', 'alice', false]));
    expect(decisions[0]!.note).toBe('same mug');
    const audit = await jsonl<AuditRecord>(out.audit);
    expect(audit.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(run.stages.after!.state).toBe('succeeded');
  });

  it('refuses unknown items, invalid choices, the wrong run and decisions after close, changing nothing', async () => {
    const { ref, ids } = await putReviewItems(store, 2);
    const runId = await h.submit(reviewPipeline(ref, { choices: ['yes', 'no', 'unsure'] }));
    await waitingReview(runId);
    const unknown = await refused(decideItems(h.session, runId, 'check', 'bob', [{ id: ids[0]!, choice: 'yes' }, { id: 'item-999999', choice: 'yes' }]));
    expect(unknown.message).toMatch(/decision 2 \(item item-999999\): unknown item/);
    const bad = await refused(decideItems(h.session, runId, 'check', 'bob', [{ id: ids[0]!, choice: 'accept' }]));
    expect(bad.message).toMatch(/"accept" is not a choice; choices: yes, no, unsure/);
    const progress = await reviewProgress(h.session, runId, 'check');
    expect(progress).toMatchObject({ decided: 0, votes: 0 });
    const stage = await refused(decideItems(h.session, runId, 'after', 'bob', [{ id: ids[0]!, choice: 'yes' }]));
    expect(stage.message).toMatch(/core\/noop stage, not a review/);
    const handle = h.env.client.workflow.getHandle(`${runId}/review/check`);
    const { reviewDecideUpdate } = await import('../../workflows/review-messages.js');
    const wrongRun = await handle.executeUpdate(reviewDecideUpdate, { args: [{ runId: 'another-run', stage: 'check', by: 'bob', decisions: [{ id: ids[0]!, choice: 'yes' }] }] })
      .then(() => undefined, (e: { cause?: Error }) => e.cause?.message);
    expect(wrongRun).toMatch(/this is the review of stage check in run .*, not check in another-run/);
    expect(await reviewProgress(h.session, runId, 'check')).toMatchObject({ decided: 0, votes: 0 });
    await decideItems(h.session, runId, 'check', 'bob', ids.map((id) => ({ id, choice: 'unsure' })));
    await h.result(runId);
    const late = await refused(decideItems(h.session, runId, 'check', 'bob', [{ id: ids[0]!, choice: 'yes' }]));
    expect(late.kind).toBe('closed');
  });

  it('asks two people per item with quorum 2, gives them different items while one holds them, and reports agreement', async () => {
    const { ref, ids } = await putReviewItems(store, 4);
    const runId = await h.submit(reviewPipeline(ref, { quorum: 2 }));
    await waitingReview(runId);
    const a = await claimItems(h.session, runId, 'check', 'ann', 2);
    const b = await claimItems(h.session, runId, 'check', 'ben', 4);
    const c = await claimItems(h.session, runId, 'check', 'cat', 4);
    expect(a.ids).toEqual(ids.slice(0, 2));
    // Quorum 2: ben may share ann's items; a third person gets only what two have not claimed.
    expect(b.ids).toEqual(ids);
    expect(c.ids).toEqual(ids.slice(2));
    await decideItems(h.session, runId, 'check', 'ann', ids.map((id) => ({ id, choice: 'accept' })));
    const full = await decideItems(h.session, runId, 'check', 'cat', [{ id: ids[0]!, choice: 'reject' }, { id: ids[1]!, choice: 'reject' }]);
    expect(full.progress.decided).toBe(2);
    const skipped = await decideItems(h.session, runId, 'check', 'ben', [{ id: ids[0]!, choice: 'accept' }]);
    expect(skipped.skipped).toEqual([{ id: ids[0]!, reason: 'already decided by 2 people' }]);
    const undo = await decideItems(h.session, runId, 'check', 'cat', [{ id: ids[1]!, undo: true }]);
    expect(undo).toMatchObject({ undone: 1, progress: { decided: 1 } });
    await decideItems(h.session, runId, 'check', 'ben', ids.slice(1).map((id) => ({ id, choice: 'accept' })));
    const run = await h.result(runId);
    const out = run.stages.check!.outputs as unknown as ReviewOut;
    expect(out).toMatchObject({ counts: { accept: 4, reject: 0 }, agreement: { quorum: 2, mean: 0.875, unanimous: 0.75, ties: 1 } });
    const decisions = await jsonl<Decision>(out.decisions);
    expect(decisions[0]).toMatchObject({ id: ids[0], choice: 'accept', tie: true, agreement: 0.5 });
    expect(decisions[0]!.votes!.map((v) => v.by)).toEqual(['ann', 'cat']);
  });

  it('fails at a deadline keeping the decisions, and a retry reopens the review with them', async () => {
    const { ref, ids } = await putReviewItems(store, 3);
    const runId = await h.submit(reviewPipeline(ref, { deadline: '3s' }));
    await waitingReview(runId);
    await decideItems(h.session, runId, 'check', 'dan', [{ id: ids[0]!, choice: 'reject' }]);
    const failed = await h.waitFor(runId, 'the deadline', (s) => s.stages.check!.state === 'failed');
    expect(failed.stages.check!.error).toMatchObject({ type: 'ReviewDeadline' });
    expect(failed.stages.check!.error!.message).toMatch(/2 of 3 items undecided.*--set deadline=24h/);
    await h.env.client.workflow.getHandle(runId).executeUpdate(retryUpdate, { args: [{ stage: 'check', by: 'dan', set: { deadline: '1h' } }] });
    await waitingReview(runId);
    expect(await reviewProgress(h.session, runId, 'check')).toMatchObject({ decided: 1, byReviewer: { dan: 1 } });
    await decideItems(h.session, runId, 'check', 'dan', ids.slice(1).map((id) => ({ id, choice: 'accept' })));
    const run = await h.result(runId);
    expect((run.stages.check!.outputs as { counts: object }).counts).toMatchObject({ people: 3, accept: 2, reject: 1 });
  });

  it('accepts what is left at the deadline when asked, marking those decisions automatic', async () => {
    const { ref, ids } = await putReviewItems(store, 3);
    const runId = await h.submit(reviewPipeline(ref, { deadline: '2s', onDeadline: 'accept-remaining' }));
    await waitingReview(runId);
    await decideItems(h.session, runId, 'check', 'eve', [{ id: ids[0]!, choice: 'reject' }]);
    const run = await h.result(runId);
    const out = run.stages.check!.outputs as unknown as ReviewOut;
    expect(out).toMatchObject({ outcome: 'deadline', counts: { people: 1, automatic: 2, accept: 2, reject: 1 } });
    const decisions = await jsonl<Decision>(out.decisions);
    expect(decisions.slice(1).every((d) => d.automatic && d.by === 'deadline' && d.choice === 'accept')).toBe(true);
  });

  it('keeps waiting past the deadline when asked, and says it is overdue', async () => {
    const { ref, ids } = await putReviewItems(store, 1);
    const runId = await h.submit(reviewPipeline(ref, { deadline: '1s', onDeadline: 'keep-waiting' }));
    await waitingReview(runId);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await reviewProgress(h.session, runId, 'check')).toMatchObject({ overdue: true, state: 'open' });
    await decideItems(h.session, runId, 'check', 'fay', [{ id: ids[0]!, choice: 'accept' }]);
    expect((await h.result(runId)).state).toBe('succeeded');
  });

  it('lets a policy decide every item at once, each decision marked automatic', async () => {
    const { ref } = await putReviewItems(store, 6, (i) => ({ group: `g${i % 2}` }));
    const runId = await h.submit(reviewPipeline(ref, { policy: { name: 'top-one', top: 1 } }));
    const run = await h.result(runId);
    const out = run.stages.check!.outputs as unknown as ReviewOut;
    expect(out).toMatchObject({ outcome: 'policy', policy: 'top-one: accept the top 1 of each group by score; reject the rest', counts: { automatic: 6, accept: 2 } });
    const decisions = await jsonl<Decision>(out.decisions);
    expect(decisions.every((d) => d.automatic && d.by === 'policy:top-one')).toBe(true);
  });

  it('lets one person hold at most 50 items at once and hands released items to others at once', async () => {
    const { ref, ids } = await putReviewItems(store, 70);
    const runId = await h.submit(reviewPipeline(ref));
    await waitingReview(runId);
    const ann = await claimItems(h.session, runId, 'check', 'ann', 200);
    expect(ann.ids).toEqual(ids.slice(0, MAX_HELD_PER_REVIEWER));
    expect(ann.limited).toMatch(/you hold 50 items, the most one person may hold at once/);
    expect((await claimItems(h.session, runId, 'check', 'bob', 30)).ids).toEqual(ids.slice(50));
    // What the page sends when it closes: nothing claimed in exchange.
    expect((await claimItems(h.session, runId, 'check', 'ann', 0, ids.slice(0, 10))).ids).toEqual([]);
    expect((await claimItems(h.session, runId, 'check', 'bob', 30)).ids).toEqual([...ids.slice(0, 10), ...ids.slice(50)]);
    const nothing = await refused(claimItems(h.session, runId, 'check', 'ann', 0));
    expect(nothing.message).toMatch(/claim between 1 and 200 items at a time \(0 only to release items\)/);
  });

  it('keeps people who are not assignees out, refuses names with control characters, and marks names nobody checked', async () => {
    const { ref, ids } = await putReviewItems(store, 2);
    const runId = await h.submit(reviewPipeline(ref, { assignees: ['ann', 'bob'] }));
    await waitingReview(runId);
    const outsider = await refused(decideItems(h.session, runId, 'check', 'eve', [{ id: ids[0]!, choice: 'accept' }]));
    expect(outsider).toMatchObject({ kind: 'forbidden', message: expect.stringMatching(/eve may not decide this review; assignees: ann, bob/) });
    expect((await refused(claimItems(h.session, runId, 'check', 'eve', 1))).kind).toBe('forbidden');
    const escape = await refused(decideItems(h.session, runId, 'check', 'ann\u001b[2J', [{ id: ids[0]!, choice: 'accept' }]));
    expect(escape).toMatchObject({ kind: 'invalid', message: expect.stringMatching(/holds control characters/) });
    await decideItems(h.session, runId, 'check', 'ann', [{ id: ids[0]!, choice: 'accept', note: 'same\u001b[31m mug\r\nsame lid\u0007' }], { unauthenticated: true });
    await decideItems(h.session, runId, 'check', 'bob', [{ id: ids[1]!, choice: 'reject' }]);
    const run = await h.result(runId);
    const out = run.stages.check!.outputs as unknown as ReviewOut;
    const audit = await jsonl<AuditRecord>(out.audit);
    expect(audit.map((a) => [a.by, a.note, a.unauthenticated])).toEqual([['ann', 'same[31m mug\nsame lid', true], ['bob', undefined, undefined]]);
    expect((await jsonl<Decision>(out.decisions)).map((d) => [d.by, d.unauthenticated])).toEqual([['ann', true], ['bob', undefined]]);
  });

  it('continues as new under tiny limits without losing a decision, and exports the audit while open', async () => {
    const { ref, ids } = await putReviewItems(store, 40);
    const runId = await h.submit(reviewPipeline(ref), { reviewLimits: { updatesPerRun: 4, flushAt: 5 } });
    await waitingReview(runId);
    for (let i = 0; i < 30; i += 3) {
      await decideItems(h.session, runId, 'check', 'gus', ids.slice(i, i + 3).map((id) => ({ id, choice: i % 2 ? 'reject' : 'accept' })));
    }
    const progress = await reviewProgress(h.session, runId, 'check');
    expect(progress.decided).toBe(30);
    expect(progress.generation).toBeGreaterThanOrEqual(2);
    const snapshot = await auditSnapshot(h.session, runId, 'check');
    const flushed = snapshot.segments.reduce((n, s) => n + (s.counts?.rows ?? 0), 0);
    expect(flushed + snapshot.pending.length).toBe(30);
    await decideItems(h.session, runId, 'check', 'gus', ids.slice(30).map((id) => ({ id, choice: 'accept' })));
    const run = await h.result(runId);
    const audit = await jsonl<AuditRecord>((run.stages.check!.outputs as unknown as ReviewOut).audit);
    expect(audit.map((a) => a.seq)).toEqual(ids.map((_, i) => i + 1));
  });
});
