import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CompiledPipeline, Json, JsonObject, RunState, StageState } from '../engine/types.js';
import type { ReviewCarried, ReviewLimits } from './review.js';

/** Task queue of a stage's activity; prefixed so twinflow's queues never collide with others on a shared cluster. */
export function activityQueue(queue: string): string {
  return `twinflow-${queue}`;
}

/**
 * Task queue of interpreter workflows (and their reviews and cache lookups): the cpu
 * stages' queue. Temporal hands a worker an activity task together with the workflow task
 * that scheduled it (eager dispatch) only when both are on the same task queue, and that
 * saves each cpu stage one trip through the server's matching, about half its overhead.
 * Workflow and activity tasks of one queue are polled separately, so a host with
 * `--no-workflows` still takes only stages, and one without `cpu` only workflows.
 */
export const CONTROL_QUEUE = activityQueue('cpu');
/** Where interpreter workflows ran until 2026-12: workers still poll it, so runs started then go on to the end. */
export const LEGACY_CONTROL_QUEUE = 'twinflow';
export const INTERPRETER_WORKFLOW = 'pipelineWorkflow';
/**
 * Failure types of refused updates (approve, reject, retry, skip, review decisions): clients
 * tell why from the type, never from the words. `notNow`: the run or stage is past or not yet
 * at that point (HTTP 409); `notAllowed`: this person may not (403); `unknown`: no such stage
 * (404); `invalid`: the request itself is wrong (400).
 */
export const REFUSED = {
  notNow: 'DecisionNotNow',
  notAllowed: 'DecisionNotAllowed',
  unknown: 'UnknownStage',
  invalid: 'InvalidDecision',
} as const;

/** Search attributes the dev server registers, shown in the Temporal Web UI. */
export const SEARCH_ATTRIBUTES = { pipeline: 'TwinflowPipeline', state: 'TwinflowState' } as const;

export interface RunOptions {
  /** Skip cache lookups (results are still written). @default false */
  noCache?: boolean;
  /** Whether the search attributes above exist on the server. @default false */
  searchAttributes?: boolean;
  /** Continue as new once history passes this many events (Temporal's own suggestion applies too). */
  maxHistoryEvents?: number;
  /** When review workflows flush their audit and continue as new (tests lower them). */
  reviewLimits?: ReviewLimits;
}

/** What one stage went through, in order: decisions by people and recoveries. */
export interface StageEvent {
  at: string;
  event: 'approved' | 'rejected' | 'retry' | 'skip' | 'worker-lost' | 'worker-stopped' | 'failed' | 'cache-hit' | 'cache-stale';
  by?: string;
  /** `by` is a name someone typed on a review page in local mode, not a verified identity. */
  unauthenticated?: true;
  note?: string;
  set?: JsonObject;
}

export interface ApprovalRecord {
  decision: 'approved' | 'rejected';
  by: string;
  at: string;
  note?: string;
  /** Decided on a review page in local mode: `by` was typed, not verified. */
  unauthenticated?: true;
}

export interface StageError {
  message: string;
  type?: string;
  exitCode?: number;
  logTail?: string[];
}

export interface StageStatus {
  state: StageState;
  uses: string;
  queue: string;
  needs: string[];
  /** Activity attempts across every try, including retries a person asked for. */
  attempts: number;
  startedAt?: string;
  endedAt?: string;
  outputs?: JsonObject;
  error?: StageError;
  approval?: ApprovalRecord;
  /** What a waiting stage waits for. */
  waitingFor?: 'approval' | 'review';
  /** An open review's queue (see workflows/review.ts); its progress comes from the review's own query. */
  review?: { workflowId: string; total: number; title?: string };
  message?: string;
  approvers?: string[];
  cacheKey?: string;
  cachedFrom?: { runId: string; stageId: string };
  skippedReason?: string;
  /** Input overrides from `twinflow retry --set`, applied on top of `with`. */
  overrides?: JsonObject;
  log?: string;
  events: StageEvent[];
}

export interface RunStatus {
  runId: string;
  pipeline: string;
  state: RunState;
  startedAt: string;
  endedAt?: string;
  order: string[];
  stages: Record<string, StageStatus>;
  params: JsonObject;
  /** Times this run continued as new to keep its history small. */
  generation: number;
}

export interface PipelineInput {
  pipeline: CompiledPipeline;
  options?: RunOptions;
  /** State carried across continue-as-new. */
  carried?: {
    stages: Record<string, StageStatus>;
    startedAt: string;
    generation: number;
    reviewResume?: Record<string, { queue: string; carried: ReviewCarried }>;
  };
}

export interface DecisionArgs {
  stage: string;
  by: string;
  note?: string;
  /** Sent by a review page in local mode, where nobody checked who typed `by`. */
  unauthenticated?: true;
}

export interface RetryArgs extends DecisionArgs {
  set?: Record<string, Json>;
}

export const statusQuery = defineQuery<RunStatus>('status');
export const approveUpdate = defineUpdate<StageStatus, [DecisionArgs]>('approve');
export const rejectUpdate = defineUpdate<StageStatus, [DecisionArgs]>('reject');
export const retryUpdate = defineUpdate<StageStatus, [RetryArgs]>('retry');
export const skipUpdate = defineUpdate<StageStatus, [DecisionArgs]>('skip');
