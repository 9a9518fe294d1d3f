/**
 * The interpreter on a real Temporal dev server:
 * - a diamond runs its two branches at the same time and joins their outputs
 * - an approval gate waits, records who approved and why, and refuses bad decisions
 * - a rejected gate fails, can be retried (asks again) and skipped
 * - a failing stage waits while independent branches finish; retry with changed input
 *   succeeds and upstream stages ran once
 * - skipping a failed stage skips stages that use its outputs and runs stages that only need it
 * - cancel kills a running `sleep` (its whole process group)
 * - a second run is all cache hits; a failed stage writes no cache entry
 * - a long run continues as new and carries its state across
 * - outputs that would take the run's state past what continue-as-new can carry fail
 *   their stage with why, instead of stalling the run
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { approveUpdate, rejectUpdate, retryUpdate, skipUpdate } from '../../workflows/messages.js';
import { fetchRun } from '../../cli/run-status.js';
import { stageDetail } from '../../cli/render.js';
import { isAlive, startHarness, summary, type Harness } from './harness.js';

let h: Harness;
let scratch: string;

beforeAll(async () => {
  h = await startHarness();
  scratch = path.join(h.home.root, 'scratch');
  await fs.mkdir(scratch, { recursive: true });
});
afterAll(async () => h?.stop());

/** The reason a workflow's validator gave for refusing an update. */
async function refusal(update: Promise<unknown>): Promise<string> {
  const err = await update.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return (err as WorkflowUpdateFailedError).cause?.message ?? '';
}

const lines = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);

describe('interpreter', () => {
  it('runs the branches of a diamond concurrently and joins their outputs', async () => {
    const runId = await h.submit(`
name: diamond
stages:
  top: { uses: core/shell, with: { run: 'echo ''{"n": 21}''' } }
  left: { uses: core/shell, with: { run: 'sleep 2; echo "{\\"v\\": $((\${{ stages.top.outputs.n }} * 2))}"' } }
  right: { uses: core/shell, with: { run: 'sleep 2; echo ''{"v": 1}''' } }
  join: { uses: core/shell, with: { run: 'echo "{\\"sum\\": $((\${{ stages.left.outputs.v }} + \${{ stages.right.outputs.v }}))}"' } }
`);
    const done = await h.result(runId);
    expect(summary(done)).toEqual({ top: 'succeeded', left: 'succeeded', right: 'succeeded', join: 'succeeded' });
    expect(done.state).toBe('succeeded');
    expect(done.stages.join!.outputs).toEqual({ sum: 43 });
    expect(done.stages.join!.needs.sort()).toEqual(['left', 'right']);
    const { left, right } = done.stages;
    // Both branches were running at once: each started before the other ended.
    expect(Date.parse(left!.startedAt!)).toBeLessThan(Date.parse(right!.endedAt!));
    expect(Date.parse(right!.startedAt!)).toBeLessThan(Date.parse(left!.endedAt!));
  });

  it('waits at an approval gate, records the approval, and refuses decisions that do not apply', async () => {
    const runId = await h.submit(`
name: gate
stages:
  prepare: { uses: core/shell, with: { run: 'echo ''{"release": "v2"}''' } }
  review:
    uses: core/approval
    needs: [prepare]
    with: { message: 'check \${{ stages.prepare.outputs.release }}', approvers: [ana, bo] }
  publish: { uses: core/shell, needs: [review], with: { run: 'echo published' } }
`);
    const waiting = await h.waitFor(runId, 'the gate to wait', (s) => s.stages.review!.state === 'waiting');
    expect(waiting.state).toBe('waiting');
    expect(waiting.stages.review!.message).toBe('check v2');
    expect(waiting.stages.publish!.state).toBe('pending');
    const handle = h.env.client.workflow.getHandle(runId);
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ stage: 'review', by: 'mallory' }] }))).toMatch(/mallory may not decide stage review; approvers: ana, bo/);
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ stage: 'prepare', by: 'ana' }] }))).toMatch(/not an approval/);
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ stage: 'nope', by: 'ana' }] }))).toMatch(/unknown stage nope/);
    await handle.executeUpdate(approveUpdate, { args: [{ stage: 'review', by: 'ana', note: 'numbers match' }] });
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ stage: 'review', by: 'bo' }] }))).toMatch(/not waiting/);
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages.publish!.state).toBe('succeeded');
    expect(done.stages.review!.approval).toMatchObject({ decision: 'approved', by: 'ana', note: 'numbers match' });
    expect(done.stages.review!.outputs).toMatchObject({ approved: true, by: 'ana' });
  });

  it('fails a rejected gate, asks again on retry, and goes on when the gate is skipped', async () => {
    const runId = await h.submit(`
name: reject
stages:
  review: { uses: core/approval }
  publish: { uses: core/shell, needs: [review], with: { run: 'echo ok' } }
`);
    const handle = h.env.client.workflow.getHandle(runId);
    await h.waitFor(runId, 'the gate', (s) => s.stages.review!.state === 'waiting');
    expect(await refusal(handle.executeUpdate(rejectUpdate, { args: [{ stage: 'review', by: 'ana' }] }))).toMatch(/needs a note/);
    await handle.executeUpdate(rejectUpdate, { args: [{ stage: 'review', by: 'ana', note: 'labels look off' }] });
    const rejected = await h.status(runId);
    expect(rejected.stages.review!.state).toBe('failed');
    expect(rejected.stages.review!.error?.message).toContain('labels look off');
    expect(rejected.state).toBe('waiting');
    await handle.executeUpdate(retryUpdate, { args: [{ stage: 'review', by: 'ana' }] });
    await h.waitFor(runId, 'the gate to ask again', (s) => s.stages.review!.state === 'waiting');
    await handle.executeUpdate(skipUpdate, { args: [{ stage: 'review', by: 'bo', note: 'not needed' }] });
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages.review!.state).toBe('skipped');
    expect(done.stages.publish!.state).toBe('succeeded');
    expect(done.stages.review!.events.map((e) => e.event)).toEqual(['rejected', 'retry', 'skip']);
  });

  it('keeps independent branches going while a failed stage waits, then retries only that stage with new input', async () => {
    const counter = path.join(scratch, 'upstream-runs.txt');
    const runId = await h.submit(`
name: retry
params: { counter: '${counter}' }
stages:
  upstream: { uses: core/shell, with: { run: 'echo run >> \${{ params.counter }}; echo ''{"value": 5}''' } }
  flaky:
    uses: core/shell
    with: { run: 'echo "about to fail on \${{ stages.upstream.outputs.value }}"; exit 3' }
  independent: { uses: core/shell, needs: [upstream], with: { run: 'sleep 1; echo fine' } }
  downstream: { uses: core/shell, with: { run: 'echo "{\\"got\\": \${{ stages.flaky.outputs.doubled }}}"' } }
`);
    const waiting = await h.waitFor(runId, 'flaky to fail and independent to finish',
      (s) => s.stages.flaky!.state === 'failed' && s.stages.independent!.state === 'succeeded');
    expect(waiting.state).toBe('waiting');
    expect(waiting.stages.downstream!.state).toBe('pending');
    expect(waiting.stages.flaky!.error?.message).toMatch(/exited with code 3/);
    expect(waiting.stages.flaky!.error?.message).toContain('about to fail on 5');
    expect(waiting.stages.flaky!.error?.exitCode).toBe(3);
    const handle = h.env.client.workflow.getHandle(runId);
    expect(await refusal(handle.executeUpdate(retryUpdate, { args: [{ stage: 'upstream', by: 'ana' }] }))).toMatch(/only a failed stage/);
    await handle.executeUpdate(retryUpdate, {
      args: [{ stage: 'flaky', by: 'ana', set: { run: 'echo "{\\"doubled\\": $((${{ stages.upstream.outputs.value }} * 2))}"' } }],
    });
    const done = await h.result(runId);
    expect(summary(done)).toEqual({ upstream: 'succeeded', flaky: 'succeeded', independent: 'succeeded', downstream: 'succeeded' });
    expect(done.stages.downstream!.outputs).toEqual({ got: 10 });
    expect(await lines(counter)).toEqual(['run']);
    expect(done.stages.flaky!.events.find((e) => e.event === 'retry')?.set).toBeDefined();
    expect(done.stages.flaky!.attempts).toBe(2);
  });

  it('skips stages that use a skipped stage\'s outputs and runs those that only need it', async () => {
    const runId = await h.submit(`
name: skip
stages:
  broken: { uses: core/shell, with: { run: 'exit 1' } }
  uses-output: { uses: core/shell, with: { run: 'echo \${{ stages.broken.outputs.x }}' } }
  only-needs: { uses: core/shell, needs: [broken], with: { run: 'echo ran' } }
`);
    await h.waitFor(runId, 'broken to fail', (s) => s.stages.broken!.state === 'failed');
    await h.env.client.workflow.getHandle(runId).executeUpdate(skipUpdate, { args: [{ stage: 'broken', by: 'ana' }] });
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages['uses-output']!.state).toBe('skipped');
    expect(done.stages['uses-output']!.skippedReason).toContain('skipped stage broken');
    expect(done.stages['only-needs']!.state).toBe('succeeded');
  });

  it('cancels a run and kills the process group of a running stage', async () => {
    const pidFile = path.join(scratch, 'sleep.pid');
    const runId = await h.submit(`
name: cancel
params: { pidfile: '${pidFile}' }
stages:
  long: { uses: core/shell, heartbeat: 5s, with: { run: 'sleep 300 & echo $! > \${{ params.pidfile }}; wait' } }
  after: { uses: core/shell, needs: [long], with: { run: 'echo never' } }
`);
    await h.waitFor(runId, 'the sleep to start', (s) => s.stages.long!.state === 'running');
    let pid = 0;
    for (let i = 0; i < 50 && !pid; i++) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (!pid) await new Promise((r) => setTimeout(r, 100));
    }
    expect(isAlive(pid)).toBe(true);
    await h.env.client.workflow.getHandle(runId).cancel();
    const done = await h.result(runId);
    expect(done.state).toBe('cancelled');
    expect(done.stages.after!.state).toBe('pending');
    await expect.poll(() => isAlive(pid), { timeout: 5_000 }).toBe(false);
  });

  it('serves a second identical run from the cache and never caches a failure', async () => {
    const counter = path.join(scratch, 'cache-runs.txt');
    const yaml = `
name: cached
params: { counter: '${counter}', n: 3 }
stages:
  make: { uses: core/shell, cache: true, with: { run: 'echo x >> \${{ params.counter }}; echo "{\\"n\\": \${{ params.n }}}"' } }
  use: { uses: core/shell, cache: true, with: { run: 'echo "{\\"m\\": $((\${{ stages.make.outputs.n }} + 1))}"' } }
  never-cached: { uses: core/shell, needs: [use], with: { run: 'echo "{\\"t\\": 1}"' } }
`;
    const first = await h.result(await h.submit(yaml));
    expect(summary(first)).toEqual({ make: 'succeeded', use: 'succeeded', 'never-cached': 'succeeded' });
    const second = await h.result(await h.submit(yaml));
    expect(summary(second)).toEqual({ make: 'cached', use: 'cached', 'never-cached': 'succeeded' });
    expect(second.stages.use!.outputs).toEqual({ m: 4 });
    expect(second.stages.make!.cachedFrom?.runId).toBe(first.runId);
    expect(await lines(counter)).toHaveLength(1);
    const fresh = await h.result(await h.submit(yaml, { noCache: true }));
    expect(fresh.stages.make!.state).toBe('succeeded');
    expect(await lines(counter)).toHaveLength(2);

    const failing = await h.submit(`
name: fails
stages:
  bad: { uses: core/shell, cache: true, with: { run: 'exit 2' } }
`);
    const failed = await h.waitFor(failing, 'bad to fail', (s) => s.stages.bad!.state === 'failed');
    const key = failed.stages.bad!.cacheKey!;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    await expect(fs.access(path.join(h.home.cacheDir, key.slice(0, 2), `${key}.json`))).rejects.toThrow();
    await h.env.client.workflow.getHandle(failing).cancel();
  });

  it('shows the progress a running stage reports, read from its heartbeats', async () => {
    const runId = await h.submit(`
name: progress
stages:
  work: { uses: core/shell, with: { run: 'echo "::progress::7/20 shards"; sleep 4' } }
`);
    await expect.poll(async () => (await fetchRun(h.session, runId)).stages.work?.progress, { timeout: 15_000, interval: 250 })
      .toEqual({ done: 7, total: 20, message: 'shards' });
    await h.env.client.workflow.getHandle(runId).cancel();
  });

  it('says when a stage waits for a worker on a queue nobody serves', async () => {
    const runId = await h.submit(`
name: no-gpu
stages:
  train: { uses: core/noop, queue: gpu }
`);
    await expect.poll(async () => (await fetchRun(h.session, runId)).stages.train?.queued, { timeout: 15_000, interval: 250 }).toBe(true);
    const view = await fetchRun(h.session, runId);
    expect(stageDetail(view.stages.train!)).toMatch(/waiting for a worker on queue gpu/);
    await h.env.client.workflow.getHandle(runId).cancel();
  });

  it('continues as new when its history grows and carries every stage across', async () => {
    const stages = Array.from({ length: 12 }, (_, i) => `  s${i}: { uses: core/shell, ${i ? `needs: [s${i - 1}], ` : ''}with: { run: 'echo "{\\"i\\": ${i}}"' } }`).join('\n');
    const runId = await h.submit(`name: long\nstages:\n${stages}\n`, { maxHistoryEvents: 40 });
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.generation).toBeGreaterThan(0);
    expect(Object.values(done.stages).every((s) => s.state === 'succeeded')).toBe(true);
    expect(done.stages.s11!.outputs).toEqual({ i: 11 });
  });

  it('fails a stage whose outputs would take the run past the state it can carry, and the rest go on', async () => {
    const stages = Array.from({ length: 34 }, (_, i) =>
      `  s${i}: { uses: core/shell, with: { run: 'printf "{\\"i\\": ${i}, \\"blob\\": \\"%s\\"}\\n" "$(head -c 60000 /dev/zero | tr "\\\\0" a)"' } }`).join('\n');
    const runId = await h.submit(`name: bulky\nconcurrency: 2\nstages:\n${stages}\n  after: { uses: core/noop, with: { outputs: { ok: true } } }\n`);
    const waiting = await h.waitFor(runId, 'a stage to fail for size', (s) => Object.values(s.stages).some((st) => st.error?.type === 'RunStateTooLarge') &&
      Object.values(s.stages).every((st) => st.state !== 'running' && st.state !== 'pending'), 120_000);
    const failed = Object.values(waiting.stages).filter((st) => st.state === 'failed');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.error!.message).toMatch(/would bring the run's state to \d+ bytes; .* under 1800000/);
    expect(Object.values(waiting.stages).filter((st) => st.state === 'succeeded').length).toBeGreaterThan(25);
    expect(waiting.stages.after!.state).toBe('succeeded');
    await h.env.client.workflow.getHandle(runId).cancel();
  });
});
