/**
 * GPUs lent by a worker (`worker.ts --gpus 2`), on a real Temporal dev server, with a
 * worker.ts process whose own CUDA_VISIBLE_DEVICES is 4,5 and three stage slots:
 * - three core/shell stages asking for 1 GPU each run at most two at once, each seeing one
 *   device of its own as CUDA_VISIBLE_DEVICES (4 or 5, never both at the same time); the
 *   third waits for a device, and its heartbeat says what it waits for
 * - a stage asking for 3 fails at once with NotEnoughGpus, naming the worker's count and
 *   how to fix it, without a retry, while the others go on
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import type { StageHeartbeat } from '../../activities/stage-io.js';
import { spawnWorker } from '../support/worker-process.js';
import { startHarness, summary, type Harness } from './harness.js';

const cleanups: Array<() => Promise<unknown>> = [];
let h: Harness;
let scratch: string;
let runId: string;
beforeAll(async () => {
  h = await startHarness();
  cleanups.push(() => h.stop());
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-gpus-'));
  cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
  await spawnWorker({ address: h.address, home: h.home.root }, 'gpu', cleanups, { args: ['--gpus', '2', '--concurrency', '3'], env: { CUDA_VISIBLE_DEVICES: '4,5' } });
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const pipeline = (dir: string) => `
name: gpus
stages:
  train:
    uses: core/shell
    queue: gpu
    resources: { gpus: 1 }
    matrix: { n: [1, 2, 3] }
    with:
      run: |
        echo "start $(date +%s%N) $CUDA_VISIBLE_DEVICES" >> ${dir}/events
        sleep 3
        echo "end $(date +%s%N) $CUDA_VISIBLE_DEVICES" >> ${dir}/events
        echo "{\\"devices\\": \\"$CUDA_VISIBLE_DEVICES\\"}"
  huge:
    uses: core/shell
    queue: gpu
    resources: { gpus: 3 }
    with: { run: 'echo never' }
`;

interface Span { start: number; end: number; devices: string }

/** Each stage's run from the events file: when it started and ended, and what it saw. */
async function spans(dir: string): Promise<Span[]> {
  const lines = (await fs.readFile(path.join(dir, 'events'), 'utf8')).trim().split('\n').map((l) => l.split(' '));
  const open = lines.filter(([what]) => what === 'start');
  const ends = lines.filter(([what]) => what === 'end');
  return open.map(([, at, devices]) => {
    const end = ends.find(([, t, d]) => d === devices && Number(t) > Number(at))!;
    ends.splice(ends.indexOf(end), 1);
    return { start: Number(at), end: Number(end[1]), devices: devices ?? '' };
  });
}

/** What the stages' heartbeats say while the run goes on. */
async function heartbeatsUntilDone(runId: string): Promise<string[]> {
  const handle = h.env.client.workflow.getHandle(runId);
  const said: string[] = [];
  for (;;) {
    const status = await h.status(runId);
    if (Object.values(status.stages).every((s) => s.state !== 'running' && s.state !== 'pending')) return said;
    for (const p of (await handle.describe()).raw.pendingActivities ?? []) {
      const payload = p.heartbeatDetails?.payloads?.[0];
      if (payload) said.push(defaultPayloadConverter.fromPayload<StageHeartbeat>(payload).progress?.message ?? '');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('a worker lending GPUs', () => {
  it('runs as many one-GPU stages at once as it has GPUs, each on a device of its own', async () => {
    runId = await h.submit(pipeline(scratch));
    const said = await heartbeatsUntilDone(runId);
    const status = await h.status(runId);
    const trains = Object.values(status.stages).filter((s) => s.uses === 'core/shell' && s.outputs);
    expect(trains.map((s) => s.state), JSON.stringify(summary(status))).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(trains.map((s) => s.outputs!.devices).every((d) => d === '4' || d === '5')).toBe(true);

    const runs = await spans(scratch);
    expect(runs).toHaveLength(3);
    const overlapping = (a: Span, b: Span) => a.start < b.end && b.start < a.end;
    // At every moment a stage starts, at most two run (it included), on different devices; one
    // stage may overlap both others, at different times, when they follow each other on a device.
    for (const a of runs) {
      const running = runs.filter((b) => b.start <= a.start && a.start < b.end);
      expect(running.length).toBeLessThanOrEqual(2);
      expect(new Set(running.map((b) => b.devices)).size).toBe(running.length);
    }
    expect(runs.some((a) => runs.some((b) => a !== b && overlapping(a, b)))).toBe(true);
    expect(said.some((m) => /^waiting for 1 GPU on .+: 0 of 2 free; held by gpus-\S+ train\[n=\d\] \(GPU [45]\)/.test(m)), said.join('\n')).toBe(true);
  });

  it('fails a stage asking for more GPUs than the worker has at once, saying how to fix it', async () => {
    const status = await h.status(runId);
    const huge = status.stages.huge!;
    expect(huge.state).toBe('failed');
    expect(huge.attempts).toBe(1);
    expect(huge.error).toMatchObject({ type: 'NotEnoughGpus' });
    expect(huge.error!.message).toMatch(/stage huge asks for 3 GPUs \(resources.gpus\) but the worker on .+ has 2 \(worker.ts --gpus 2\)/);
    expect(huge.error!.message).toContain('queue: gpu-3');
  });
});
