import {
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { StageActivityInput } from '../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../engine/types.js';
import {
  reviewAuditQuery,
  reviewClaimUpdate,
  reviewDecideUpdate,
  reviewProgressQuery,
  reviewRecentQuery,
  type AuditRecord,
  type ReviewClaimArgs,
  type ReviewConfig,
  type ReviewDecideArgs,
  type ReviewProgress,
  type ReviewState,
} from './review-messages.js';
import { ReviewQueue, type QueueSnapshot } from './review-queue.js';
import { hashIndex } from './review-ids.js';

/** Item ids per page of the hash index (9 bytes each: 450 KB, under the 512 KB payload warning). */
const INDEX_PAGE = 50_000;

/** Limits that decide when the queue flushes its audit and continues as new. */
export interface ReviewLimits {
  /** Audit records held in memory before they are written to the store. @default 2000 */
  flushAt?: number;
  /** Updates handled by one run before continuing as new (Temporal allows 2,000). @default 1500 */
  updatesPerRun?: number;
  /** History events before continuing as new (Temporal's own suggestion applies too). @default 8000 */
  historyEvents?: number;
  /** History bytes before continuing as new. @default 3.5 MB */
  historyBytes?: number;
}

export interface ReviewWorkflowInput {
  /** The stage call the review stands for: closing writes its outputs and cache entry. */
  call: StageActivityInput;
  /** Task queue of the review's activities (the stage's queue). */
  activityQueue: string;
  items: ArtifactRef;
  queue: ArtifactRef;
  total: number;
  config: ReviewConfig;
  limits?: ReviewLimits;
  carried?: ReviewCarried;
}

/** What the next run of a review (after continue-as-new, or a retry after its deadline) starts from. */
export interface ReviewCarried {
  snapshot: QueueSnapshot;
  segments: ArtifactRef[];
  pending: AuditRecord[];
  generation: number;
  overdue: boolean;
}

export type ReviewResult =
  | { outcome: 'closed'; outputs: JsonObject; attempt: number }
  | { outcome: 'expired'; undecided: number; carried: ReviewCarried };

/**
 * One `core/review` stage's queue, a child of the run. People's decisions arrive in
 * validated updates; the audit goes to the store in segments; the queue state stays
 * compact and continues as new long before Temporal's history and update limits. It ends
 * when every item has its quorum, or at the deadline as the stage asked.
 */
export async function reviewWorkflow(input: ReviewWorkflowInput): Promise<ReviewResult> {
  return new Review(input).run();
}

class Review {
  private readonly acts;
  private queue!: ReviewQueue;
  private state: ReviewState = 'opening';
  private segments: ArtifactRef[];
  private pending: AuditRecord[];
  /** Records a flush is writing now: in no segment yet and no longer pending, but still shown by the audit query. */
  private flushing: AuditRecord[] = [];
  private overdue: boolean;
  private updates = 0;
  private changed = false;

  constructor(private readonly input: ReviewWorkflowInput) {
    this.acts = proxyActivities<Activities>({
      taskQueue: input.activityQueue,
      startToCloseTimeout: '10 minutes',
      retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['InvalidStageInput'] },
    });
    this.segments = input.carried?.segments ?? [];
    this.pending = input.carried?.pending ?? [];
    this.overdue = input.carried?.overdue ?? false;
  }

  async run(): Promise<ReviewResult> {
    // Handlers first: an update that finds none is refused outright, even while the index loads.
    this.registerHandlers();
    const pages: string[] = [];
    for (let offset = 0; offset < this.input.total; offset += INDEX_PAGE) {
      pages.push((await this.acts.loadReviewIndex({ queue: this.input.queue, total: this.input.total, offset, limit: INDEX_PAGE })).hashes);
    }
    this.queue = new ReviewQueue(hashIndex(pages.join('')), this.input.config, this.input.carried?.snapshot);
    this.state = 'open';
    try {
      return await this.loop();
    } catch (err) {
      if (isCancellation(err)) this.state = 'closed';
      throw err;
    }
  }

  private async loop(): Promise<ReviewResult> {
    const deadline = this.input.config.deadlineAt ? Date.parse(this.input.config.deadlineAt) : undefined;
    for (;;) {
      // Reset before looking: a decision that lands during an await below wakes the next wait.
      this.changed = false;
      if (this.queue.decided === this.queue.total) return this.close();
      if (this.pending.length >= (this.input.limits?.flushAt ?? 2000)) {
        await this.flush();
        continue;
      }
      if (this.historyIsLong()) return this.continueAsNew();
      const waitMs = deadline !== undefined && !this.overdue ? deadline - Date.now() : undefined;
      // A long history wakes the loop too: the validators refuse decisions from then on, so none would.
      const wake = () => this.changed || this.historyIsLong();
      const woke = waitMs === undefined ? (await condition(wake), true) : waitMs > 0 && (await condition(wake, waitMs));
      if (woke || this.queue.decided === this.queue.total) continue;
      const action = this.input.config.onDeadline;
      if (action === 'keep-waiting') this.overdue = true;
      else if (action === 'fail') return this.expire();
      else return this.close(action === 'accept-remaining' ? 'accept' : 'reject');
    }
  }

  private historyIsLong(): boolean {
    const info = workflowInfo();
    const limits = this.input.limits ?? {};
    return info.continueAsNewSuggested
      || this.updates >= (limits.updatesPerRun ?? 1500)
      || info.historyLength >= (limits.historyEvents ?? 8000)
      || info.historySize >= (limits.historyBytes ?? 3_500_000);
  }

  /** Every item has its quorum (or the deadline decides the rest): write decisions and audit. */
  private async close(remaining?: 'accept' | 'reject'): Promise<ReviewResult> {
    this.state = 'closing';
    await condition(allHandlersFinished);
    await this.flush();
    const { call, items, queue, config } = this.input;
    const result = await this.acts.closeReview({
      ...call,
      review: { items, queue, config, segments: this.segments, outcome: remaining ? 'deadline' : 'complete', ...(remaining ? { remaining } : {}) },
    });
    this.state = 'closed';
    return { outcome: 'closed', outputs: result.outputs, attempt: result.attempt };
  }

  /** The deadline passed and the stage fails: the decisions so far go back to the run, for a retry. */
  private async expire(): Promise<ReviewResult> {
    this.state = 'expired';
    await condition(allHandlersFinished);
    await this.flush();
    return { outcome: 'expired', undecided: this.queue.total - this.queue.decided, carried: this.carried(0) };
  }

  private async continueAsNew(): Promise<never> {
    this.state = 'closing';
    await condition(allHandlersFinished);
    await this.flush();
    return continueAsNew<typeof reviewWorkflow>({ ...this.input, carried: this.carried(1) });
  }

  private carried(nextGeneration: 0 | 1): ReviewCarried {
    const generation = (this.input.carried?.generation ?? 0) + nextGeneration;
    return { snapshot: this.queue.snapshot(Date.now()), segments: this.segments, pending: this.pending, generation, overdue: this.overdue };
  }

  /** Writes the audit records held in memory to the store as one more segment. */
  private async flush(): Promise<void> {
    while (this.pending.length) {
      const records = this.pending;
      this.pending = [];
      this.flushing = records;
      const { runId, stageId } = this.input.call;
      this.segments.push(await this.acts.appendReviewAudit({ runId, stageId, records }));
      this.flushing = [];
    }
  }

  private progress(): ReviewProgress {
    const { call, config, items, queue, total } = this.input;
    return {
      runId: call.runId, stage: call.stageId, state: this.state, total, decided: this.queue?.decided ?? 0, votes: this.queue?.votes ?? 0,
      quorum: config.quorum, choices: config.choices, byReviewer: this.queue?.byReviewer() ?? {}, byChoice: this.queue?.byChoice() ?? {},
      ...(config.deadlineAt ? { deadlineAt: config.deadlineAt } : {}), onDeadline: config.onDeadline, overdue: this.overdue,
      assignees: config.assignees, ...(config.title ? { title: config.title } : {}), ...(config.question ? { question: config.question } : {}),
      items, queue, generation: this.input.carried?.generation ?? 0,
    };
  }

  /** Refuses messages for another run or stage, and any once the queue stops taking decisions. */
  private checkTarget(args: { runId?: string; stage?: string }): void {
    const { runId, stageId } = this.input.call;
    if (args?.runId !== runId || args?.stage !== stageId) {
      throw new Error(`this is the review of stage ${stageId} in run ${runId}, not ${args?.stage} in ${args?.runId}`);
    }
    if (this.state === 'opening') throw new Error('the review is opening (loading its queue); send again in a moment');
    // Past the limits nothing more is taken in: the loop continues as new once its flush is done.
    const moving = this.state === 'closing' || (this.state === 'open' && this.historyIsLong());
    if (moving && this.queue.decided < this.queue.total) throw new Error('the review is moving to a fresh history; send again in a moment');
    if (this.state !== 'open') throw new Error(`the review is ${this.state === 'expired' ? 'past its deadline' : 'closed'}; nothing more can be decided`);
  }

  private registerHandlers(): void {
    setHandler(reviewDecideUpdate, (args: ReviewDecideArgs) => {
      const { result, records } = this.queue.apply(args, new Date().toISOString());
      this.pending.push(...records);
      this.updates++;
      this.changed = true;
      return { ...result, progress: this.progress() };
    }, { validator: (args) => { this.checkTarget(args); this.queue.check(args); } });

    setHandler(reviewClaimUpdate, (args: ReviewClaimArgs) => {
      const { positions, until, limited } = this.queue.claim(args.by, args.count, Date.now(), args.release);
      this.updates++;
      this.changed = true;
      return { positions, leaseUntil: new Date(until).toISOString(), ...(limited ? { limited } : {}), progress: this.progress() };
    }, {
      validator: (args) => {
        this.checkTarget(args);
        this.queue.checkReviewer(args.by);
        if (args.release !== undefined && (!Array.isArray(args.release) || args.release.length > 200)) throw new Error('release at most 200 items at a time');
        // A page that closes hands its items back with count 0: it wants none in exchange.
        const least = args.release?.length ? 0 : 1;
        if (!Number.isInteger(args.count) || args.count < least || args.count > 200) throw new Error('claim between 1 and 200 items at a time (0 only to release items)');
      },
    });

    setHandler(reviewProgressQuery, () => this.progress());
    setHandler(reviewRecentQuery, (by: string) => ({ decisions: this.queue?.recentOf(by) ?? [] }));
    setHandler(reviewAuditQuery, () => ({ segments: this.segments, pending: [...this.flushing, ...this.pending] }));
  }
}
