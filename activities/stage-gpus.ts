import os from 'node:os';
import { ApplicationFailure, type Context } from '@temporalio/activity';
import { GpuRequestTooLarge, withGpus, type GpuPool, type GpuReservation } from './gpu-pool.js';
import type { StageActivityInput } from './stage-io.js';
import { FAILURE } from '../engine/failures.js';

/** The failure type of a stage asking for more GPUs than its worker has. */
export const NOT_ENOUGH_GPUS = FAILURE.notEnoughGpus;
/** How often a stage waiting for GPUs says so; also what keeps its heartbeat timeout from firing. */
const WAIT_HEARTBEAT_MS = 1_000;

/**
 * Runs a stage attempt holding the GPUs it asks for (`resources.gpus`), released when it
 * ends however it ends. On a worker with a pool (`--gpus N`) a stage that asks for none
 * sees none (CUDA_VISIBLE_DEVICES empty), so it cannot use a device another stage holds;
 * a worker without one manages no GPUs and leaves the environment as it is.
 */
export async function holdingGpus<T>(pool: GpuPool | undefined, input: StageActivityInput, ctx: Context, work: () => Promise<T>): Promise<T> {
  if (!pool) return work();
  const count = input.resources?.gpus ?? 0;
  if (count === 0) return withGpus([], work);
  const reservation = await reserve(pool, count, input, ctx);
  try {
    return await withGpus(reservation.devices, work);
  } finally {
    reservation.release();
  }
}

/** The devices, once free; meanwhile a heartbeat a second saying what the stage waits for and who holds them. */
async function reserve(pool: GpuPool, count: number, input: StageActivityInput, ctx: Context): Promise<GpuReservation> {
  let pending: Promise<GpuReservation>;
  try {
    pending = pool.reserve(count, { runId: input.runId, stageId: input.stageId }, ctx.cancellationSignal);
  } catch (err) {
    if (err instanceof GpuRequestTooLarge) throw tooLarge(err, input, ctx);
    throw err;
  }
  const say = () => ctx.heartbeat({ progress: { done: 0, message: `waiting for ${count} GPU${count === 1 ? '' : 's'} on ${os.hostname()}: ${pool.describe()}` } });
  const beat = setInterval(say, WAIT_HEARTBEAT_MS);
  try {
    if (pool.freeCount < count || pool.waiting > 0) say();
    return await pending;
  } finally {
    clearInterval(beat);
  }
}

/**
 * A stage that can never fit here fails at once rather than wait forever. It fails
 * without retries: a retry would land on a queue where this worker polls too. The run
 * goes on; the stage waits for `twinflow retry` once a larger host serves its queue.
 */
function tooLarge(err: GpuRequestTooLarge, input: StageActivityInput, ctx: Context): ApplicationFailure {
  const queue = ctx.info.taskQueue.replace(/^twinflow-/, '');
  return ApplicationFailure.create({
    type: NOT_ENOUGH_GPUS,
    nonRetryable: true,
    message: `stage ${input.stageId} asks for ${err.requested} GPUs (resources.gpus) but the worker on ${os.hostname()} (pid ${process.pid}) ` +
      `has ${err.size} (worker.ts --gpus ${err.size}). Give the stage a queue that only hosts with at least ${err.requested} serve ` +
      `(e.g. queue: ${queue}-${err.requested}, and worker.ts --queue ${queue}-${err.requested} --gpus ${err.requested} there) and run the pipeline again, ` +
      `or ask for fewer; twinflow retry ${input.runId} ${input.stageId} tries it again on queue ${queue}`,
  });
}
