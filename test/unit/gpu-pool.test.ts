/**
 * The worker's GPU pool (`worker.ts --gpus N`) and the stage attempts that use it:
 * - devices are reserved distinct, lowest free first, and handed on in arrival order
 * - a waiter that is aborted leaves the queue; a release twice frees once
 * - a request larger than the pool is refused at once (NotEnoughGpus, no retries, how to fix)
 * - a stage's commands see exactly its devices as CUDA_VISIBLE_DEVICES; a stage asking for
 *   none on a pool worker sees none; a worker without a pool leaves the environment alone
 * - an attempt gives its devices back when it fails or is cancelled, waiting or running,
 *   and heartbeats what it waits for
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { GpuPool, GpuRequestTooLarge, gpuDevices } from '../../activities/gpu-pool.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { runInProcessGroup } from '../../activities/process-group.js';
import { stageAttempt } from '../../activities/stage-attempt.js';
import type { StageActivityInput } from '../../activities/stage-io.js';

const who = (stageId: string) => ({ runId: 'run', stageId });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('GpuPool', () => {
  it('reserves distinct devices, the lowest free first, and takes them back on release', async () => {
    const pool = new GpuPool(['0', '1', '2', '3']);
    const a = await pool.reserve(1, who('a'));
    const b = await pool.reserve(2, who('b'));
    expect([a.devices, b.devices]).toEqual([['0'], ['1', '2']]);
    a.release();
    const c = await pool.reserve(2, who('c'));
    expect(c.devices).toEqual(['0', '3']);
    expect(pool.freeCount).toBe(0);
    expect(pool.describe()).toBe('0 of 4 free; held by run c (GPU 0,3), run b (GPU 1,2)');
  });

  it('makes a stage wait while its devices are taken and serves waiters in arrival order', async () => {
    const pool = new GpuPool(['0', '1']);
    const first = await pool.reserve(1, who('first'));
    const order: string[] = [];
    const big = pool.reserve(2, who('big')).then((r) => (order.push('big'), r));
    const small = pool.reserve(1, who('small')).then((r) => (order.push('small'), r));
    await settle();
    // One device is free, but `small` came after `big`: it may not overtake it.
    expect(order).toEqual([]);
    expect(pool.waiting).toBe(2);
    first.release();
    const got = await big;
    expect(got.devices).toEqual(['0', '1']);
    got.release();
    expect((await small).devices).toEqual(['0']);
    expect(order).toEqual(['big', 'small']);
  });

  it('lets an aborted waiter leave the queue, so those behind it are served', async () => {
    const pool = new GpuPool(['0', '1']);
    const held = await pool.reserve(1, who('held'));
    const abort = new AbortController();
    const big = pool.reserve(2, who('big'), abort.signal);
    const small = pool.reserve(1, who('small'));
    abort.abort(new Error('cancelled'));
    await expect(big).rejects.toThrow('cancelled');
    expect((await small).devices).toEqual(['1']);
    expect(pool.waiting).toBe(0);
    held.release();
  });

  it('frees a reservation once however often it is released', async () => {
    const pool = new GpuPool(['0', '1']);
    const a = await pool.reserve(1, who('a'));
    const b = await pool.reserve(1, who('b'));
    a.release();
    a.release();
    expect(pool.freeCount).toBe(1);
    b.release();
    expect(pool.freeCount).toBe(2);
  });

  it('refuses at once a request larger than the whole pool', () => {
    const pool = new GpuPool(['0', '1']);
    expect(() => pool.reserve(3, who('huge'))).toThrow(GpuRequestTooLarge);
    expect(() => pool.reserve(0, who('none'))).toThrow(RangeError);
    expect(() => new GpuPool(['0', '0'])).toThrow(RangeError);
  });
});

describe('gpuDevices', () => {
  it('numbers the devices from 0, or takes the first N of the worker\'s own CUDA_VISIBLE_DEVICES', () => {
    expect(gpuDevices(3, {})).toEqual(['0', '1', '2']);
    expect(gpuDevices(2, { CUDA_VISIBLE_DEVICES: '4, 5,6' })).toEqual(['4', '5']);
    expect(() => gpuDevices(4, { CUDA_VISIBLE_DEVICES: '4,5' })).toThrow(/lists 2; advertise at most 2/);
  });
});

describe('stage attempts on a worker with GPUs', () => {
  let home: HomeLayout;
  let n = 0;
  beforeAll(async () => { home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-gpus-'))); });
  afterAll(async () => fs.rm(home.root, { recursive: true, force: true }));

  const input = (gpus?: number): StageActivityInput => ({
    runId: 'run', stageId: `s${n++}`, uses: 'core/shell', kindVersion: '1', with: {}, shellEnv: {},
    ...(gpus ? { resources: { gpus } } : {}),
  });
  /** What a stage's command sees as CUDA_VISIBLE_DEVICES, `unset` when it has none. */
  const seen = async () => {
    let out = '';
    await runInProcessGroup({
      argv: ['bash', '-c', 'echo "${CUDA_VISIBLE_DEVICES-unset}"'], cwd: home.root, env: { CUDA_VISIBLE_DEVICES: '7' },
      signal: new AbortController().signal, onLine: (line) => (out += line),
    });
    return out;
  };
  const attempt = <R>(pool: GpuPool | undefined, i: StageActivityInput, run: () => Promise<R>, env = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 30_000 })) =>
    env.run(stageAttempt(home, pool)(async () => run()), i);

  it('gives a stage\'s commands exactly its devices, none to a stage that asks for none, and leaves a worker without GPUs alone', async () => {
    const pool = new GpuPool(['0', '1', '2']);
    await attempt(pool, input(1), async () => {
      expect(await attempt(pool, input(2), seen)).toBe('1,2');
    });
    expect(await attempt(pool, input(), seen)).toBe('');
    expect(await attempt(undefined, input(2), seen)).toBe('7');
    expect(pool.freeCount).toBe(3);
  });

  it('gives the devices back when the stage fails', async () => {
    const pool = new GpuPool(['0', '1']);
    await expect(attempt(pool, input(2), async () => { throw new Error('trainer crashed'); })).rejects.toThrow('trainer crashed');
    expect(pool.freeCount).toBe(2);
  });

  it('heartbeats what a waiting stage waits for, and leaves no trace when it is cancelled while waiting or running', async () => {
    const pool = new GpuPool(['0', '1']);
    const runningEnv = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 30_000 });
    const running = attempt(pool, input(2), () => new Promise<never>((_, reject) => {
      Context.current().cancellationSignal.addEventListener('abort', () => reject(new Error('stopped')));
    }), runningEnv);
    // The running stage takes its lock (file I/O) before its devices: wait until it holds them.
    while (pool.freeCount > 0) await settle();
    const waitingEnv = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 30_000 });
    const beats: string[] = [];
    waitingEnv.on('heartbeat', (d: { progress?: { message?: string } }) => beats.push(d.progress?.message ?? ''));
    const waiting = attempt(pool, input(1), async () => 'ran', waitingEnv);
    while (beats.length === 0) await settle();
    expect(beats[0]).toMatch(/^waiting for 1 GPU on .+: 0 of 2 free; held by run s\d+ \(GPU 0,1\); 1 waiting$/);
    waitingEnv.cancel();
    await expect(waiting).rejects.toThrow();
    expect(pool.waiting).toBe(0);
    runningEnv.cancel();
    await expect(running).rejects.toThrow('stopped');
    expect(pool.freeCount).toBe(2);
  });

  it('fails a stage asking for more GPUs than the worker has at once, without retries, saying how to fix it', async () => {
    const env = new MockActivityEnvironment({ attempt: 1, taskQueue: 'twinflow-gpu' });
    const failure = await attempt(new GpuPool(['0', '1']), input(4), async () => 'never', env).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'NotEnoughGpus', nonRetryable: true });
    expect((failure as Error).message).toMatch(/asks for 4 GPUs \(resources.gpus\) but the worker on .+ has 2 \(worker.ts --gpus 2\)/);
    expect((failure as Error).message).toContain('worker.ts --queue gpu-4 --gpus 4');
  });
});
