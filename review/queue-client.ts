import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Session } from '../cli/client.js';
import type { ArtifactStore } from '../activities/artifact-store.js';
import { openStores } from '../activities/store/config.js';
import { readQueueIds } from '../activities/review/close.js';
import type { ArtifactRef } from '../engine/types.js';
import { INTERPRETER_WORKFLOW, REFUSED, statusQuery, type RunStatus, type StageStatus } from '../workflows/messages.js';
import {
  reviewAuditQuery,
  reviewClaimUpdate,
  reviewDecideUpdate,
  reviewProgressQuery,
  reviewRecentQuery,
  type ReviewAuditSnapshot,
  type ReviewDecideResult,
  type ReviewDecisionInput,
  type ReviewProgress,
} from '../workflows/review-messages.js';

/**
 * What the review page and `twinflow review ...` ask of Temporal. Every refusal is a
 * ReviewRequestError whose `reason` says what is wrong and what to do; the page turns
 * `kind` into an HTTP status, the CLI into an exit code.
 */

/** Thrown when a review request cannot be served: unknown run or stage, a refused decision, a reviewer who is not an assignee, a closed review. */
export class ReviewRequestError extends Error {
  constructor(readonly kind: 'not-found' | 'invalid' | 'forbidden' | 'closed', message: string) {
    super(message);
    this.name = 'ReviewRequestError';
  }
}

/** A run's status, or a not-found error naming the run. */
export async function runStatus(session: Session, runId: string): Promise<RunStatus> {
  const handle = session.client.workflow.getHandle(runId);
  try {
    const desc = await handle.describe();
    if (desc.type !== INTERPRETER_WORKFLOW) throw new ReviewRequestError('not-found', `${runId} is not a twinflow run`);
    if (desc.status.name === 'RUNNING') return await handle.query(statusQuery);
    if (desc.status.name === 'COMPLETED') return (await handle.result()) as RunStatus;
    throw new ReviewRequestError('closed', `run ${runId} has ended (${desc.status.name.toLowerCase()})`);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new ReviewRequestError('not-found', `no run with id ${runId}`);
    throw err;
  }
}

/** The stage's record, checked to be a review stage. */
export function reviewStage(run: RunStatus, stage: string): StageStatus {
  const rec = run.stages[stage];
  if (!rec) throw new ReviewRequestError('not-found', `run ${run.runId} has no stage ${stage}; stages: ${run.order.join(', ')}`);
  if (rec.uses !== 'core/review') throw new ReviewRequestError('invalid', `stage ${stage} is a ${rec.uses} stage, not a review`);
  return rec;
}

/** The handle of an open review; a closed-error when the stage is not waiting for people. */
export async function openReviewHandle(session: Session, runId: string, stage: string): Promise<WorkflowHandle> {
  const rec = reviewStage(await runStatus(session, runId), stage);
  if (rec.state !== 'waiting' || !rec.review) {
    const what = rec.state === 'succeeded' || rec.state === 'cached' ? 'is closed; `twinflow review export` writes its decisions' : `is ${rec.state}, not open for decisions`;
    throw new ReviewRequestError('closed', `review ${stage} of run ${runId} ${what}`);
  }
  return session.client.workflow.getHandle(rec.review.workflowId);
}

/**
 * Turns Temporal's refusals into ReviewRequestErrors; other errors pass through. A review
 * that is opening or moving to a fresh history (continue-as-new) refuses for a moment:
 * those requests are sent again.
 */
async function refusals<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const moving = /fresh history|review is opening|continued.as.new|workflow is closing/i.test(String((err as { cause?: Error })?.cause?.message ?? (err as Error)?.message));
      // Continuing as new takes a flush and a fresh start: up to about a minute on a busy host.
      if (!moving || attempt >= 60) return translate(what, err);
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
    }
  }
}

function translate(what: string, err: unknown): never {
  if (err instanceof WorkflowUpdateFailedError) {
    const reason = err.cause?.message ?? err.message;
    if (err.cause instanceof ApplicationFailure && err.cause.type === REFUSED.notAllowed) throw new ReviewRequestError('forbidden', `${what} refused: ${reason}`);
    throw new ReviewRequestError(/closed|past its deadline/.test(reason) ? 'closed' : 'invalid', `${what} refused: ${reason}`);
  }
  if (err instanceof WorkflowNotFoundError || /already completed|workflow.*(not found|closed)/i.test((err as Error)?.message ?? '')) {
    throw new ReviewRequestError('closed', `${what} refused: the review has closed`);
  }
  throw err;
}

/** `unauthenticated`: `by` is a name typed where nobody signed in (the review page's local mode). */
export async function decideItems(session: Session, runId: string, stage: string, by: string, decisions: ReviewDecisionInput[], opts: { unauthenticated?: boolean } = {}): Promise<ReviewDecideResult> {
  const handle = await openReviewHandle(session, runId, stage);
  const args = { runId, stage, by, decisions, ...(opts.unauthenticated ? { unauthenticated: true } : {}) };
  return refusals('decision', () => handle.executeUpdate(reviewDecideUpdate, { args: [args] }));
}

/** Items handed to one reviewer, by id, held for them until `leaseUntil`. */
export interface ClaimedItems {
  ids: string[];
  leaseUntil: string;
  /** Why fewer came back than asked for while others were free (the hold cap). */
  limited?: string;
  progress: ReviewProgress;
}

/** `count` 0 with `release`: hands items back without taking others. */
export async function claimItems(session: Session, runId: string, stage: string, by: string, count: number, release?: string[]): Promise<ClaimedItems> {
  const handle = await openReviewHandle(session, runId, stage);
  const claimed = await refusals('claim', () => handle.executeUpdate(reviewClaimUpdate, { args: [{ runId, stage, by, count, ...(release?.length ? { release } : {}) }] }));
  const ids = await queueIds(claimed.progress.queue);
  return { ids: claimed.positions.map((p) => ids[p]!), leaseUntil: claimed.leaseUntil, ...(claimed.limited ? { limited: claimed.limited } : {}), progress: claimed.progress };
}

export async function reviewProgress(session: Session, runId: string, stage: string): Promise<ReviewProgress> {
  const handle = await openReviewHandle(session, runId, stage);
  return refusals('progress query', () => handle.query(reviewProgressQuery));
}

/** A reviewer's latest decisions, oldest first: the page's undo stack after a reload. */
export async function recentDecisions(session: Session, runId: string, stage: string, by: string): Promise<{ decisions: Array<{ id: string; choice: string }> }> {
  const handle = await openReviewHandle(session, runId, stage);
  const [recent, progress] = await refusals('query', () => Promise.all([handle.query(reviewRecentQuery, by), handle.query(reviewProgressQuery)]));
  const ids = await queueIds(progress.queue);
  return { decisions: recent.decisions.map((d) => ({ id: ids[d.position]!, choice: d.choice })) };
}

const queues = new Map<string, string[]>();

/** The ids of a queue artifact (one JSON string per line), by position; the last few are kept in memory. */
export async function queueIds(ref: ArtifactRef, store: ArtifactStore = openStores().artifacts): Promise<string[]> {
  const known = queues.get(ref.sha256);
  if (known) return known;
  const ids = await readQueueIds(store, ref);
  queues.set(ref.sha256, ids);
  if (queues.size > 4) queues.delete(queues.keys().next().value!);
  return ids;
}

export async function auditSnapshot(session: Session, runId: string, stage: string): Promise<ReviewAuditSnapshot> {
  const handle = await openReviewHandle(session, runId, stage);
  return refusals('audit query', () => handle.query(reviewAuditQuery));
}

/** Stages of running runs that wait for people: open reviews and approval gates. */
export interface WaitingStage {
  runId: string;
  pipeline: string;
  stage: string;
  kind: 'review' | 'approval';
  message?: string;
  approvers?: string[];
  review?: { workflowId: string; total: number; title?: string };
}

export async function listWaiting(session: Session, limit = 50): Promise<WaitingStage[]> {
  const found: WaitingStage[] = [];
  const query = `WorkflowType = '${INTERPRETER_WORKFLOW}' AND ExecutionStatus = 'Running'`;
  let seen = 0;
  for await (const wf of session.client.workflow.list({ query })) {
    if (++seen > limit) break;
    const run = await session.client.workflow.getHandle(wf.workflowId).query(statusQuery).catch(() => undefined);
    if (!run) continue;
    for (const stage of run.order) {
      const rec = run.stages[stage]!;
      if (rec.state !== 'waiting' || !rec.waitingFor) continue;
      found.push({
        runId: run.runId, pipeline: run.pipeline, stage, kind: rec.waitingFor,
        ...(rec.message ? { message: rec.message } : {}),
        ...(rec.approvers?.length ? { approvers: rec.approvers } : {}),
        ...(rec.review ? { review: rec.review } : {}),
      });
    }
  }
  return found;
}
