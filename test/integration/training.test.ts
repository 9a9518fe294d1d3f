/**
 * verl/grpo on a real Temporal dev server, through test/fakes/fake-verl-python (a FAKE of
 * verl: it checks the command line and writes verl's logger lines and checkpoint layout):
 * - `twinflow status` shows the run's step, reward and KL from the stage's heartbeats
 * - the GPU worker killed with SIGKILL mid-training: the watchdog kills verl's process
 *   group, a new worker picks the stage up, verl resumes from the newest checkpoint (each
 *   step runs once), and the merged model comes out
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, startHarness, summary, type Harness } from './harness.js';
import { readPid, spawnWorker } from '../support/worker-process.js';
import { runTwinflow } from '../support/twinflow-cli.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-verl-python');
const cleanups: Array<() => Promise<unknown>> = [];
let h: Harness;
let scratch: string;

beforeAll(async () => {
  h = await startHarness({ workers: false });
  cleanups.push(() => h.stop());
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-grpo-'));
  cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
  await fs.mkdir(path.join(scratch, 'twin'));
  for (const f of ['train.parquet', 'eval.parquet']) await fs.writeFile(path.join(scratch, 'twin', f), `${f}\n`);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('verl/grpo on a GPU worker', () => {
  it('shows its steps in status, and resumes from the newest checkpoint on a new worker after its worker is killed', async () => {
    const worker = { address: h.address, home: h.home.root };
    const first = await spawnWorker(worker, 'gpu', cleanups, { workflows: true });
    const runId = await h.submit(`
name: grpo
stages:
  train:
    uses: verl/grpo
    heartbeat: 3s
    with:
      dataset: ${path.join(scratch, 'twin')}
      python: ${FAKE}
      saveFreq: 1
      env:
        FAKE_VERL_STEPS: "6"
        FAKE_VERL_STEP_S: "0.3"
        FAKE_VERL_HANG_AT: "4"
        FAKE_VERL_ONCE_DIR: ${path.join(scratch, 'once')}
        FAKE_VERL_PID_FILE: ${path.join(scratch, 'verl.pid')}
        FAKE_VERL_CALLS: ${path.join(scratch, 'calls.jsonl')}
`);
    const verl = await readPid(path.join(scratch, 'verl.pid'));
    const checkpoints = path.join(h.home.stageDir(runId, 'train'), 'checkpoints');
    await expect.poll(() => fs.readFile(path.join(checkpoints, 'latest_checkpointed_iteration.txt'), 'utf8').catch(() => ''), { timeout: 30_000 }).toBe('3');
    // Heartbeats every second: status shows the step verl logged last and its reward.
    await expect.poll(async () => (await runTwinflow(worker, 'status', runId)).stdout, { timeout: 15_000, interval: 500 })
      .toMatch(/train .*3\/6 reward 0\.620, kl 0\.003\d*, response 317 tokens/);

    first.kill('SIGKILL');
    await expect.poll(() => isAlive(verl), { timeout: 10_000 }).toBe(false);
    await spawnWorker(worker, 'gpu', cleanups, { workflows: true });
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    const train = done.stages.train!;
    expect(train.events.map((e) => e.event)).toContain('worker-lost');
    expect(train.outputs).toMatchObject({ steps: 6, resumedFrom: 3 });
    const steps = (await fs.readFile(path.join(h.home.stageDir(runId, 'train'), 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    const calls = (await fs.readFile(path.join(scratch, 'calls.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as string[])[1]);
    expect(calls).toEqual(['verl.trainer.main_ppo', 'verl.trainer.main_ppo', 'verl.model_merger']);
  });
});
