/**
 * Durability on a real Temporal dev server:
 * - a worker killed with SIGKILL mid-stage: its stage's process group dies with it, a new
 *   worker picks the stage up and the run completes
 * - the dev server stopped and restarted on the same SQLite file mid-run: the run completes
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { homeLayout } from '../../activities/home.js';
import { freePort, startDevServer } from '../../cli/dev-server.js';
import { submitPipeline } from '../../cli/submit.js';
import { statusQuery, type RunStatus } from '../../workflows/messages.js';
import { createWorkers } from '../../worker.js';
import { isAlive, startHarness, workflowBundle } from './harness.js';
import { readPid, spawnWorker } from '../support/worker-process.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('durability', () => {
  it('moves a stage to a new worker when its worker is killed, and the run completes', async () => {
    const h = await startHarness();
    cleanups.push(() => h.stop());
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-crash-'));
    const first = await spawnWorker({ address: h.address, home: h.home.root }, 'crashy', cleanups);
    const runId = await h.submit(`
name: crash
params: { dir: '${scratch}' }
stages:
  train:
    uses: core/shell
    queue: crashy
    heartbeat: 3s
    with:
      run: |
        n=$(ls \${{ params.dir }} | wc -l)
        sleep 30 & echo $! > \${{ params.dir }}/attempt-$n.pid
        if [ "$n" -gt 0 ]; then kill %1; echo '{"finished": true}'; exit 0; fi
        wait
  after: { uses: core/shell, needs: [train], with: { run: 'echo "{\\"ok\\": \${{ stages.train.outputs.finished }}}"' } }
`);
    const firstSleep = await readPid(path.join(scratch, 'attempt-0.pid'));
    expect(isAlive(firstSleep)).toBe(true);
    first.kill('SIGKILL');
    // The watchdog beside the stage sees its worker gone and kills the stage's process group.
    await expect.poll(() => isAlive(firstSleep), { timeout: 10_000 }).toBe(false);
    await spawnWorker({ address: h.address, home: h.home.root }, 'crashy', cleanups);
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages.after!.outputs).toEqual({ ok: true });
    expect(done.stages.train!.events.map((e) => e.event)).toContain('worker-lost');
  });

  it('finishes a run across a restart of the dev server on the same SQLite file', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-restart-'));
    cleanups.push(() => fs.rm(root, { recursive: true, force: true }));
    const home = homeLayout(root);
    const port = await freePort();
    const serverOpts = { port, headless: true, dbFile: path.join(root, 'temporal.sqlite'), logFile: path.join(root, 'server.log') };
    let server = await startDevServer(serverOpts);
    cleanups.push(() => server.stop());
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const workers = await createWorkers({ connection: nativeConnection, home, workflowBundle: workflowBundle(), queues: ['cpu'] });
    const running = Promise.all(workers.map((w) => w.run()));
    cleanups.push(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => undefined);
      await nativeConnection.close();
    });
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const session = { client, address: server.address, close: async () => undefined };
    const { checkPipelineText } = await import('../../engine/compile.js');
    const { pipeline } = checkPipelineText(`
name: restart
stages:
  slow: { uses: core/shell, with: { run: 'sleep 6; echo ''{"a": 1}''' } }
  next: { uses: core/shell, with: { run: 'echo "{\\"b\\": \${{ stages.slow.outputs.a }}}"' } }
`, 'restart.yaml', {});
    const runId = await submitPipeline(session, pipeline!);
    const handle = client.workflow.getHandle(runId);
    await expect.poll(async () => (await handle.query(statusQuery)).stages.slow!.state, { timeout: 20_000 }).toBe('running');
    await server.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    server = await startDevServer(serverOpts);
    const done = (await handle.result()) as RunStatus;
    expect(done.state).toBe('succeeded');
    expect(done.stages.next!.outputs).toEqual({ b: 1 });
  });
});
