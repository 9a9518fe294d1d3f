import {
  ActivityCancellationType,
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, StageActivity } from '../activities/index.js';
import type { StageActivityInput } from '../activities/stage-io.js';
import type { OpenReviewResult } from '../activities/review/open.js';
import { evaluateCondition, references, resolveInputs, type ExprContext } from '../engine/expressions.js';
import type { CompiledPipeline, CompiledStage, JsonObject, RunState } from '../engine/types.js';
import { RunBudget } from './run-budget.js';
import {
  activityQueue,
  REFUSED,
  approveUpdate,
  rejectUpdate,
  retryUpdate,
  skipUpdate,
  statusQuery,
  type PipelineInput,
  type RunOptions,
  type RetryArgs,
  type RunStatus,
  type StageError,
  type StageStatus,
} from './messages.js';
import { upsertRunState } from './search-attributes.js';
import { applyDecision, checkDecision, refuse } from './decisions.js';
import { describeFailure, untilAWorkerFinishes } from './failures.js';
import { reviewWorkflow, type ReviewCarried } from './review.js';
import { reviewWorkflowId } from './review-messages.js';
import { NON_RETRYABLE } from '../engine/failures.js';


const { lookupCache } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

// Re-exported: the worker, the bench and the CLI read the queue names from here too.
export { activityQueue } from './messages.js';

const now = () => new Date().toISOString();
const isDone = (s: StageStatus) => s.state === 'succeeded' || s.state === 'cached' || s.state === 'skipped';

/**
 * The pipeline interpreter: one workflow per run. It starts every stage whose needs are
 * done (up to `maxParallel`), records each stage's state, and never fails the run when a
 * stage fails: the stage waits for `retry`, `skip` or a cancel of the run, while
 * independent branches go on.
 */
export async function pipelineWorkflow(input: PipelineInput): Promise<RunStatus> {
  return new Interpreter(input).execute();
}

class Interpreter {
  private readonly p: CompiledPipeline;
  private readonly options: RunOptions;
  private readonly stages: Record<string, StageStatus>;
  private readonly running = new Map<string, Promise<void>>();
  private readonly tries: Record<string, number> = {};
  /** Decisions of reviews that passed their deadline, by stage: a retry reopens the queue with them. */
  private readonly reviewResume: Record<string, { queue: string; carried: ReviewCarried }>;
  private readonly startedAt: string;
  private readonly generation: number;
  private endedAt?: string;
  private cancelled = false;
  private changed = true;
  private readonly budget: RunBudget;

  constructor(private readonly input: PipelineInput) {
    this.p = input.pipeline;
    this.options = input.options ?? {};
    this.startedAt = input.carried?.startedAt ?? now();
    this.generation = input.carried?.generation ?? 0;
    this.stages = input.carried?.stages ?? initialStages(this.p);
    this.reviewResume = input.carried?.reviewResume ?? {};
    this.budget = new RunBudget(this.p, this.stages);
  }

  async execute(): Promise<RunStatus> {
    this.registerHandlers();
    try {
      for (;;) {
        this.changed = false;
        // With a long history, start nothing new: let running stages finish, then continue as new.
        const draining = this.historyIsLong();
        if (!draining) this.startReadyStages();
        this.publishState();
        if (this.running.size === 0 && this.state() === 'succeeded') break;
        if (this.running.size === 0 && draining) await this.continueAsNew();
        await condition(() => this.changed);
      }
    } catch (err) {
      if (!isCancellation(err)) throw err;
      this.cancelled = true;
    }
    // Cancelled activities were asked to stop; wait until their process groups are gone.
    return CancellationScope.nonCancellable(async () => {
      await Promise.allSettled(this.running.values());
      this.endedAt = now();
      this.publishState();
      await condition(allHandlersFinished);
      return this.status();
    });
  }

  private published?: RunState;

  private publishState(): void {
    const state = this.state();
    if (!this.options.searchAttributes || state === this.published) return;
    this.published = state;
    upsertRunState(state);
  }

  private state(): RunState {
    if (this.cancelled) return 'cancelled';
    const all = Object.values(this.stages);
    if (all.every(isDone)) return 'succeeded';
    if (all.some((s) => s.state === 'failed' || s.state === 'waiting')) return 'waiting';
    return 'running';
  }

  private status(): RunStatus {
    return {
      runId: workflowInfo().workflowId,
      pipeline: this.p.name,
      state: this.state(),
      startedAt: this.startedAt,
      endedAt: this.endedAt,
      order: this.p.order,
      stages: this.stages,
      params: this.p.params,
      generation: this.generation,
    };
  }

  private startReadyStages(): void {
    for (const id of this.p.order) {
      if (this.running.size >= this.p.maxParallel) return;
      const rec = this.stages[id]!;
      const spec = this.p.stages[id]!;
      if (rec.state !== 'pending' || !spec.needs.every((n) => isDone(this.stages[n]!))) continue;
      const reason = this.skipReason(spec);
      if (reason) {
        Object.assign(rec, { state: 'skipped', skippedReason: reason, endedAt: now() });
        this.changed = true;
        continue;
      }
      rec.state = 'running';
      this.running.set(id, this.runStage(spec, rec).finally(() => {
        this.running.delete(id);
        this.changed = true;
      }));
    }
  }

  /** Why a ready stage must not run: its `if` is false, or it uses outputs of a skipped stage. */
  private skipReason(spec: CompiledStage): string | undefined {
    const used = references([spec.with, spec.if === undefined ? '' : `${'${{'} ${spec.if} }}`]).filter((r) => r.kind === 'stages').map((r) => r.name);
    const skipped = used.find((key) => this.stages[key]?.state === 'skipped');
    if (skipped) return `its inputs use outputs of skipped stage ${skipped}`;
    if (spec.if === undefined) return undefined;
    try {
      return evaluateCondition(spec.if, this.exprContext(spec)) ? undefined : `condition is false: ${spec.if}`;
    } catch {
      return undefined; // runStage reports the broken condition as the stage's error
    }
  }

  private exprContext(spec: CompiledStage): ExprContext {
    const stages: ExprContext['stages'] = {};
    for (const [id, rec] of Object.entries(this.stages)) {
      const s = this.p.stages[id]!;
      if (s.matrix) continue;
      stages[s.key] = { outputs: rec.outputs, skipped: rec.state === 'skipped' };
    }
    return { params: this.p.params, matrix: spec.matrix, stages };
  }

  private async runStage(spec: CompiledStage, rec: StageStatus): Promise<void> {
    Object.assign(rec, { startedAt: now(), endedAt: undefined, error: undefined, outputs: undefined });
    let resolved: ReturnType<typeof resolveInputs>;
    try {
      if (spec.if !== undefined) evaluateCondition(spec.if, this.exprContext(spec));
      resolved = resolveInputs({ ...spec.with, ...rec.overrides }, this.exprContext(spec), spec.shellFields);
    } catch (err) {
      return this.fail(rec, { message: `cannot resolve inputs: ${(err as Error).message}`, type: 'InputError' });
    }
    if (spec.handler === 'approval') {
      const { message, approvers } = resolved.with as { message?: string; approvers?: string[] };
      Object.assign(rec, { state: 'waiting', waitingFor: 'approval', message, approvers });
      return;
    }
    const call: StageActivityInput = {
      runId: workflowInfo().workflowId,
      stageId: spec.id,
      uses: spec.uses,
      kindVersion: spec.kindVersion,
      with: resolved.with,
      shellEnv: resolved.shellEnv,
      ...(spec.resources ? { resources: spec.resources } : {}),
    };
    try {
      if (spec.cache && (await this.useCache(call, rec))) return;
      if (spec.handler === 'review') await this.runReview(spec, rec, call);
      else await this.runActivity(spec, rec, call);
    } catch (err) {
      if (isCancellation(err)) return this.fail(rec, { message: 'cancelled with the run', type: 'Cancelled' });
      return this.fail(rec, describeFailure(err));
    }
  }

  /** Looks the stage up in the cache; true when it was a hit and the stage is done. */
  private async useCache(call: StageActivityInput, rec: StageStatus): Promise<boolean> {
    const found = await lookupCache({ uses: call.uses, kindVersion: call.kindVersion, inputs: call.with, shellEnv: call.shellEnv });
    call.cacheKey = found.key;
    rec.cacheKey = found.key;
    // A stale entry is a miss that says why: people should know why a cached stage ran again.
    if (found.stale && !this.options.noCache) rec.events.push({ at: now(), event: 'cache-stale', note: `cache entry not used: ${found.stale}` });
    if (!found.hit || this.options.noCache) return false;
    if (!this.fits(rec, found.hit.outputs)) return true;
    Object.assign(rec, {
      state: 'cached',
      outputs: found.hit.outputs,
      cachedFrom: { runId: found.hit.runId, stageId: found.hit.stageId },
      endedAt: now(),
    });
    rec.events.push({ at: now(), event: 'cache-hit' });
    return true;
  }

  private async runActivity(spec: CompiledStage, rec: StageStatus, call: StageActivityInput): Promise<void> {
    const result = await this.untilAWorkerFinishes(spec, rec, () => this.activity(spec)(call));
    rec.attempts += result.attempt;
    if (!this.fits(rec, result.outputs)) return;
    Object.assign(rec, { state: 'succeeded', outputs: result.outputs, log: result.log, endedAt: now() });
  }

  /** The call again whenever its worker goes away (see untilAWorkerFinishes), each time noted in the stage's events. */
  private untilAWorkerFinishes<T>(spec: CompiledStage, rec: StageStatus, call: () => Promise<T>): Promise<T> {
    return untilAWorkerFinishes(call, (gone) => {
      rec.attempts += 1;
      rec.events.push(gone === 'lost'
        ? { at: now(), event: 'worker-lost', note: 'no heartbeat; rescheduled' }
        : { at: now(), event: 'worker-stopped', note: `the worker was shut down; waiting for a worker on queue ${spec.queue}` });
      this.changed = true;
    });
  }

  /**
   * `core/review`: the open activity checks the items and either decides them by policy
   * (done) or writes the queue; then a review workflow, a child of this run, holds the
   * queue until people have decided every item or its deadline acts.
   */
  private async runReview(spec: CompiledStage, rec: StageStatus, call: StageActivityInput): Promise<void> {
    const open = this.activity.bind(this) as unknown as (s: CompiledStage) => (input: StageActivityInput) => Promise<OpenReviewResult>;
    const opened = await this.untilAWorkerFinishes(spec, rec, () => open(spec)(call));
    if ('decided' in opened) {
      rec.attempts += opened.decided.attempt;
      if (!this.fits(rec, opened.decided.outputs)) return;
      Object.assign(rec, { state: 'succeeded', outputs: opened.decided.outputs, endedAt: now() });
      return;
    }
    const { review } = opened;
    const workflowId = reviewWorkflowId(call.runId, spec.id);
    rec.attempts += 1;
    Object.assign(rec, { state: 'waiting', waitingFor: 'review', review: { workflowId, total: review.total, ...(review.config.title ? { title: review.config.title } : {}) } });
    this.changed = true;
    const resume = this.reviewResume[spec.id];
    delete this.reviewResume[spec.id];
    const carried = resume?.queue === review.queue.sha256 ? { ...resume.carried, overdue: false } : undefined;
    const result = await executeChild(reviewWorkflow, {
      workflowId,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      args: [{ call, activityQueue: activityQueue(spec.queue), ...review, ...(carried ? { carried } : {}), ...(this.options.reviewLimits ? { limits: this.options.reviewLimits } : {}) }],
    });
    rec.waitingFor = undefined;
    this.changed = true;
    if (result.outcome === 'expired') {
      this.reviewResume[spec.id] = { queue: review.queue.sha256, carried: result.carried };
      return this.fail(rec, {
        type: 'ReviewDeadline',
        message: `the review's deadline passed with ${result.undecided} of ${review.total} items undecided; the decisions made are kept: ` +
          `retry the stage to reopen the review with them (e.g. twinflow retry ${call.runId} ${spec.id} --set deadline=24h)`,
      });
    }
    if (!this.fits(rec, result.outputs)) return;
    Object.assign(rec, { state: 'succeeded', outputs: result.outputs, endedAt: now() });
  }

  /** Whether a stage's outputs fit in what the run can carry (see run-budget.ts); if not, the stage fails saying why. */
  private fits(rec: StageStatus, outputs: JsonObject): boolean {
    const tooLarge = this.budget.admit(outputs);
    if (tooLarge) this.fail(rec, { type: 'RunStateTooLarge', message: tooLarge });
    return !tooLarge;
  }

  private activity(spec: CompiledStage): StageActivity {
    const attempt = (this.tries[spec.id] = (this.tries[spec.id] ?? 0) + 1);
    const proxies = proxyActivities<Record<string, StageActivity>>({
      activityId: `${spec.id}#${attempt}`,
      taskQueue: activityQueue(spec.queue),
      startToCloseTimeout: spec.timeoutMs,
      heartbeatTimeout: spec.heartbeatMs,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: {
        maximumAttempts: spec.retry.attempts,
        initialInterval: spec.retry.backoffMs,
        maximumInterval: spec.retry.maxBackoffMs,
        backoffCoefficient: 2,
        nonRetryableErrorTypes: NON_RETRYABLE,
      },
    });
    return proxies[spec.activity]!;
  }

  private fail(rec: StageStatus, error: StageError & { attempts?: number }): void {
    const { attempts, ...rest } = error;
    rec.attempts += attempts ?? 0;
    Object.assign(rec, { state: 'failed', error: rest, endedAt: now() });
    rec.events.push({ at: now(), event: 'failed', note: rest.message.split('\n')[0] });
  }

  private historyIsLong(): boolean {
    const info = workflowInfo();
    const limit = this.options.maxHistoryEvents;
    return info.continueAsNewSuggested || (limit !== undefined && info.historyLength > limit);
  }

  private async continueAsNew(): Promise<never> {
    await condition(allHandlersFinished);
    return continueAsNew<typeof pipelineWorkflow>({
      pipeline: this.p,
      options: this.options,
      carried: { stages: this.stages, startedAt: this.startedAt, generation: this.generation + 1, reviewResume: this.reviewResume },
    });
  }

  private registerHandlers(): void {
    setHandler(statusQuery, () => this.status());
    const decide = <A extends RetryArgs>(check: (rec: StageStatus, spec: CompiledStage, args: A) => void, apply: (rec: StageStatus, args: A) => void) => ({
      validator: (args: A) => check(this.stages[args.stage]!, this.p.stages[args.stage]!, args),
      handler: (args: A) => {
        apply(this.stages[args.stage]!, args);
        this.changed = true;
        return this.stages[args.stage]!;
      },
    });
    const known = (stage: string) => {
      if (!this.p.stages[stage]) refuse(REFUSED.unknown, `unknown stage ${stage}; stages: ${this.p.order.join(', ')}`);
      if (this.cancelled || this.endedAt) refuse(REFUSED.notNow, 'the run has ended');
    };
    for (const [def, kind] of [[approveUpdate, 'approve'], [rejectUpdate, 'reject'], [retryUpdate, 'retry'], [skipUpdate, 'skip']] as const) {
      const { validator, handler } = decide(
        (rec, spec, args) => { known(args.stage); checkDecision(kind, rec, spec, args); },
        (rec, args) => applyDecision(kind, rec, args),
      );
      setHandler(def as typeof retryUpdate, handler, { validator });
    }
  }
}

function initialStages(p: CompiledPipeline): Record<string, StageStatus> {
  const stages: Record<string, StageStatus> = {};
  for (const id of p.order) {
    const s = p.stages[id]!;
    stages[id] = { state: 'pending', uses: s.uses, queue: s.queue, needs: s.needs, attempts: 0, events: [] };
  }
  return stages;
}
