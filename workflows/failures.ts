import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { StageFailureDetails } from '../activities/stage-io.js';
import type { StageError } from './messages.js';

/** A heartbeat timeout means the worker died (the shell activity heartbeats even while its command is silent). */
export function isWorkerLost(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.HEARTBEAT;
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
