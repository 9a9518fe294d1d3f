/**
 * Workers going away, on a real Temporal dev server:
 * - a worker stopped gracefully (SIGTERM) mid-stage: the stage does not fail; status says
 *   the worker stopped and it waits for a worker; the next worker runs it, without a retry
 *   being asked for (retry.attempts is 1)
 * - a worker killed while its stage's script ignores SIGTERM: the watchdog escalates to
 *   SIGKILL, and the next attempt never writes into the stage folder while the old one does
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exited, readPid, spawnWorker } from '../support/worker-process.js';
import { runTwinflow } from '../support/twinflow-cli.js';
import { isAlive, startHarness, summary, type Harness } from './harness.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

let h: Harness;
const workerEnv = () => ({ address: h.address, home: h.home.root });

describe('workers going away', () => {
  it('moves a stage whose worker was stopped gracefully to the next worker, and status says it waits for one', async () => {
    h = await startHarness();
    cleanups.push(() => h.stop());
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-stop-'));
    cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
    const first = await spawnWorker(workerEnv(), 'stoppy', cleanups);
    const runId = await h.submit(`
name: stop
params: { dir: '${scratch}' }
stages:
  train:
    uses: core/shell
    queue: stoppy
    with:
      run: |
        n=$(ls \${{ params.dir }} | wc -l)
        echo $$ > \${{ params.dir }}/attempt-$n.pid
        if [ "$n" -gt 0 ]; then echo '{"attempt": '$n'}'; exit 0; fi
        sleep 60
`);
    const script = await readPid(path.join(scratch, 'attempt-0.pid'));
    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
    expect(isAlive(script)).toBe(false);

    const waiting = await h.waitFor(runId, 'the stage to wait for a worker', (s) => s.stages.train!.events.some((e) => e.event === 'worker-stopped'));
    expect(waiting.stages.train!.state).toBe('running');
    const status = await runTwinflow({ address: h.address, home: h.home.root }, 'status', runId);
    expect(status.stdout).toMatch(/worker stopped, waiting for a worker on queue stoppy/);

    await spawnWorker(workerEnv(), 'stoppy', cleanups);
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    expect(done.stages.train!.outputs).toEqual({ attempt: 1 });
    expect(done.stages.train!.events.map((e) => e.event)).toEqual(['worker-stopped']);
  });

  it('kills a script that ignores SIGTERM when its worker dies, and the next attempt writes only after it is gone', async () => {
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-stubborn-'));
    cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
    const first = await spawnWorker(workerEnv(), 'stubborn', cleanups);
    const runId = await h.submit(`
name: stubborn
params: { dir: '${scratch}' }
stages:
  train:
    uses: core/shell
    queue: stubborn
    heartbeat: 2s
    with:
      run: |
        n=$(ls \${{ params.dir }} | wc -l)
        echo $$ > \${{ params.dir }}/attempt-$n.pid
        if [ "$n" -gt 0 ]; then echo "next $(date +%s%N)" >> "$TWINFLOW_STAGE_DIR/writes"; echo '{"ok": true}'; exit 0; fi
        trap '' TERM
        while true; do echo "old $(date +%s%N)" >> "$TWINFLOW_STAGE_DIR/writes"; sleep 0.05; done
`);
    const stubborn = await readPid(path.join(scratch, 'attempt-0.pid'));
    first.kill('SIGKILL');
    // The next worker is there at once: without a lock its attempt would start after 2 s of silence.
    await spawnWorker(workerEnv(), 'stubborn', cleanups);
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    expect(isAlive(stubborn)).toBe(false);

    const writes = (await fs.readFile(path.join(h.home.stageDir(runId, 'train'), 'writes'), 'utf8')).trim().split('\n').map((l) => l.split(' '));
    const lastOld = Math.max(...writes.filter(([who]) => who === 'old').map(([, t]) => Number(t)));
    const next = writes.filter(([who]) => who === 'next').map(([, t]) => Number(t));
    expect(next).toHaveLength(1);
    expect(next[0]!).toBeGreaterThan(lastOld);
    expect(done.stages.train!.events.map((e) => e.event)).toContain('worker-lost');
  });
});
