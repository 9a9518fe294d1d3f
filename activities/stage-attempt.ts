import { ApplicationFailure, Context } from '@temporalio/activity';
import type { GpuPool } from './gpu-pool.js';
import type { HomeLayout } from './home.js';
import { holdingGpus } from './stage-gpus.js';
import type { StageActivityInput } from './stage-io.js';
import { StageLock } from './stage-lock.js';
import { FAILURE } from '../engine/failures.js';

/** The failure type of an attempt whose worker was shut down under it: never the stage's fault. */
export const WORKER_STOPPED = FAILURE.workerStopped;

/**
 * What every stage attempt goes through, whatever its kind: it holds its stage folder's
 * lock while it runs (one attempt at a time writes there), then the GPUs it asks for from
 * the worker's pool when the worker has one (see stage-gpus.ts), and when its worker is shut
 * down under it (SIGTERM, Ctrl-C on `twinflow dev`) it ends with WorkerStopped, which the
 * interpreter answers by scheduling the stage again for the next worker, without counting
 * it against the stage's retries.
 */
export function stageAttempt(home: HomeLayout, gpus?: GpuPool) {
  return <I extends StageActivityInput, R>(run: (input: I) => Promise<R>) => async (input: I): Promise<R> => {
    const ctx = Context.current();
    let lock: StageLock | undefined;
    try {
      lock = await StageLock.acquire(home.stageDir(input.runId, input.stageId), {
        attempt: ctx.info.attempt,
        activityId: ctx.info.activityId,
        // Long enough for a predecessor to hear, at its next heartbeat, that it lost the stage and stop.
        waitMs: Math.max(30_000, 3 * (ctx.info.heartbeatTimeoutMs ?? 30_000)),
        onWait: (held) => ctx.heartbeat({ progress: { done: 0, message: `waiting for attempt ${held.attempt} (pid ${held.pid} on ${held.host}) to leave the stage folder` } }),
        signal: ctx.cancellationSignal,
      });
      return await lock.run(() => holdingGpus(gpus, input, ctx, () => run(input)));
    } catch (err) {
      if (ctx.cancellationDetails?.workerShutdown) {
        throw ApplicationFailure.create({
          type: WORKER_STOPPED,
          nonRetryable: true,
          message: `the worker (pid ${process.pid}) was shut down while stage ${input.stageId} ran; it waits for a worker to run it again`,
        });
      }
      throw err;
    } finally {
      await lock?.release();
    }
  };
}
