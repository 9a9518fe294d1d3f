import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { StageFailureDetails } from '../activities/stage-io.js';
import type { StageError } from './messages.js';
import { FAILURE } from '../engine/failures.js';

/**
 * Failure types of an attempt whose worker was shut down: ours (activities/stage-attempt.ts)
 * and the SDK's, for an activity that did not end within the worker's shutdown grace time.
 */
const WORKER_STOPPED = new Set<string>([FAILURE.workerStopped, 'WorkerShutdown']);

/**
 * Whether an activity failed because its worker went away, which is never the stage's
 * fault: `lost` when heartbeats stopped (the worker died; stage activities heartbeat even
 * while their command is silent), `stopped` when the worker was shut down under it.
 */
export function workerGone(err: unknown): 'lost' | 'stopped' | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  if (err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.HEARTBEAT) return 'lost';
  if (err.cause instanceof ApplicationFailure && WORKER_STOPPED.has(err.cause.type ?? '')) return 'stopped';
  return undefined;
}

/** A worker that vanished mid-stage is replaced this many times before the stage counts as failed. */
const MAX_WORKER_LOSSES = 10;

/**
 * Calls an activity again whenever its worker goes away: a worker that died (no
 * heartbeat; at most MAX_WORKER_LOSSES times, since a stage can crash its worker) or one
 * shut down under it (always: a restart or a deploy is never the stage's fault). The new
 * call waits on the queue for whichever worker comes next.
 */
export async function untilAWorkerFinishes<T>(call: () => Promise<T>, onGone: (gone: 'lost' | 'stopped') => void): Promise<T> {
  for (let lost = 0; ; ) {
    try {
      return await call();
    } catch (err) {
      const gone = workerGone(err);
      if (!gone || (gone === 'lost' && lost++ >= MAX_WORKER_LOSSES)) throw err;
      onGone(gone);
    }
  }
}

/** The stage error a person reads, from whatever the activity call threw. */
export function describeFailure(err: unknown): StageError & { attempts?: number } {
  const cause = err instanceof ActivityFailure || err instanceof ChildWorkflowFailure ? describeCause(err) : err;
  if (cause instanceof ApplicationFailure) {
    const details = cause.details?.[0] as StageFailureDetails | undefined;
    return { message: cause.message, type: cause.type ?? undefined, exitCode: details?.exitCode, logTail: details?.logTail, attempts: details?.attempt ?? 1 };
  }
  if (cause instanceof TimeoutFailure) {
    return { message: `timed out (${cause.timeoutType})`, type: 'Timeout', attempts: 1 };
  }
  return { message: cause instanceof Error ? cause.message : String(cause), type: 'Error', attempts: 1 };
}

/** A review workflow's failure is usually its activity's: report the innermost cause. */
function describeCause(err: ActivityFailure | ChildWorkflowFailure): unknown {
  let cause: unknown = err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  return cause;
}
