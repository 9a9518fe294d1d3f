/**
 * `twinflow workers` and first use of a stock server, for real:
 * - `run` on a stock `temporal server start-dev` (no twinflow search attributes) registers
 *   them, says so once, and the run starts
 * - `workers` lists a worker.ts process on the workflow queue and on cpu, under its
 *   pid@host identity, with the stage it runs now (text and --json); gpu and a --queue
 *   nobody serves show no worker and how to start one
 * - a namespace that does not exist is named in the error, with what to set
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startDevServer } from '../../cli/dev-server.js';
import type { WorkersReport } from '../../cli/commands/workers.js';
import { runTwinflow } from '../support/twinflow-cli.js';
import { spawnWorker } from '../support/worker-process.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function stockServer() {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-workers-'));
  cleanups.push(() => fs.rm(home, { recursive: true, force: true }));
  const server = await startDevServer({
    port: await freePort(), headless: true, dbFile: path.join(home, 'stock.sqlite'), logFile: path.join(home, 'stock.log'), searchAttributes: false,
  });
  cleanups.push(() => server.stop());
  return { home, env: { address: server.address, home } };
}

/** A stage that says it started, then holds its worker until `release` exists. */
const holdingPipeline = (scratch: string) => `
name: hold
stages:
  train:
    uses: core/shell
    with:
      run: |
        touch ${scratch}/started
        for i in $(seq 1 600); do [ -e ${scratch}/release ] && break; sleep 0.1; done
        echo '{"held": true}'
`;

describe('twinflow workers', () => {
  it('lists a worker process on its queues with the stage it runs, on a stock server that got its search attributes on first use', async () => {
    const { home, env } = await stockServer();
    const scratch = path.join(home, 'scratch');
    await fs.mkdir(scratch);
    const worker = await spawnWorker(env, 'cpu', cleanups, { workflows: true });
    const identity = `${worker.pid}@${os.hostname()} (cpu, workflows)`;
    const file = path.join(home, 'hold.yaml');
    await fs.writeFile(file, holdingPipeline(scratch));

    const submitted = await runTwinflow(env, 'run', file, '--json');
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stderr.match(/registered twinflow's search attributes \(TwinflowPipeline, TwinflowState\) in namespace default/g)).toHaveLength(1);
    const { runId } = JSON.parse(submitted.stdout) as { runId: string };
    await expect.poll(() => fs.access(path.join(scratch, 'started')).then(() => true, () => false), { timeout: 30_000 }).toBe(true);

    await expect.poll(async () => {
      const out = await runTwinflow(env, 'workers', '--json', '--queue', 'extra');
      return JSON.parse(out.stdout) as WorkersReport;
    }, { timeout: 20_000 }).toSatisfy((r: WorkersReport) => r.workers.some((w) => w.running.some((p) => p.stage === 'train')));
    const json = JSON.parse((await runTwinflow(env, 'workers', '--json', '--queue', 'extra')).stdout) as WorkersReport;
    expect(json.queues.map((q) => [q.queue, q.taskQueue, q.pollers.map((p) => p.identity)])).toEqual([
      ['workflows', 'twinflow-cpu', [identity]], ['cpu', 'twinflow-cpu', [identity]], ['gpu', 'twinflow-gpu', []], ['extra', 'twinflow-extra', []],
    ]);
    expect(json.workers).toHaveLength(1);
    expect(json.workers[0]).toMatchObject({ identity, queues: ['workflows', 'cpu'] });
    expect(json.workers[0]!.running).toEqual([expect.objectContaining({ runId, stage: 'train', activity: 'core/shell', state: 'started', attempt: 1, worker: identity })]);

    const text = await runTwinflow(env, 'workers');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/gpu\s+twinflow-gpu\s+0\s+start one with: npx tsx worker.ts --queue gpu --no-workflows/);
    expect(text.stdout).toContain(identity);
    expect(text.stdout).toMatch(new RegExp(`workflows, cpu\\s+\\S+ ago\\s+${runId} train \\(core\\/shell, attempt 1`));

    await fs.writeFile(path.join(scratch, 'release'), '');
    await expect.poll(async () => (await runTwinflow(env, 'status', runId, '--json')).stdout, { timeout: 30_000 }).toMatch(/"state": "succeeded"/);
    const idle = JSON.parse((await runTwinflow(env, 'workers', '--json')).stdout) as WorkersReport;
    expect(idle.workers[0]!.running).toEqual([]);
  });

  it('names a namespace that does not exist, and says what to set', async () => {
    const { env } = await stockServer();
    const before = process.env.TEMPORAL_NAMESPACE;
    process.env.TEMPORAL_NAMESPACE = 'nowhere';
    try {
      const out = await runTwinflow(env, 'workers');
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(`error: there is no namespace nowhere at ${env.address}, namespace nowhere (`);
      expect(out.stderr).toContain('hint: set TEMPORAL_NAMESPACE');
    } finally {
      if (before === undefined) delete process.env.TEMPORAL_NAMESPACE;
      else process.env.TEMPORAL_NAMESPACE = before;
    }
  });
});
