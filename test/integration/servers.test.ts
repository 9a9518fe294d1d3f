/**
 * The Temporal servers twinflow meets, for real:
 * - a stock `temporal server start-dev` without twinflow's search attributes: `run`
 *   registers them and the run goes on; `status` with no worker says no worker serves it
 * - `twinflow dev` killed with SIGKILL: its server follows it and frees the port; a server
 *   orphaned with its watchdog gone is reclaimed by the next `twinflow dev`
 * - Ctrl-C on `twinflow dev` mid-stage: after a restart the stage runs again by itself
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { freePort, portInUse, startDevServer } from '../../cli/dev-server.js';
import { isAlive } from '../../activities/process-groups.js';
import type { RunStatus } from '../../workflows/messages.js';
import { runTwinflow } from '../support/twinflow-cli.js';
import { exited, spawnWorker } from '../support/worker-process.js';

const repo = path.resolve(import.meta.dirname, '../..');
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function tempHome(): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-servers-'));
  cleanups.push(() => fs.rm(home, { recursive: true, force: true }));
  return home;
}

async function pipelineFile(home: string, name: string, text: string): Promise<string> {
  const file = path.join(home, `${name}.yaml`);
  await fs.writeFile(file, text);
  return file;
}

/** `twinflow dev` in its own process group, resolved once it prints the server address. */
function startDev(home: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'dev', '--port', String(port), '--headless', '--no-review'], {
    cwd: repo, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TWINFLOW_HOME: home },
  });
  cleanups.push(async () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d; if (out.includes('Ctrl-C stops')) resolve(child); });
    child.stderr!.on('data', (d: Buffer) => { out += d; });
    child.once('exit', (code) => reject(new Error(`twinflow dev exited (${code}):\n${out}`)));
  });
}

async function serverPid(home: string): Promise<number> {
  return (JSON.parse(await fs.readFile(path.join(home, 'temporal.sqlite.server.json'), 'utf8')) as { pid: number }).pid;
}

async function watchdogOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await fs.readdir('/proc')) {
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
  }
  return out;
}

describe('Temporal servers', () => {
  it('registers the search attributes a stock server lacks, and says when no worker serves a run', async () => {
    const home = await tempHome();
    const port = await freePort();
    const server = await startDevServer({ port, headless: true, dbFile: path.join(home, 'stock.sqlite'), logFile: path.join(home, 'stock.log'), searchAttributes: false });
    cleanups.push(() => server.stop());
    const env = { address: server.address, home };
    const file = await pipelineFile(home, 'hello', 'name: hello\nstages:\n  hi: { uses: core/shell, with: { run: \'echo "{\\"hi\\": 1}"\' } }\n');

    const submitted = await runTwinflow(env, 'run', file, '--json');
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stderr).toContain("registered twinflow's search attributes");
    const { runId } = JSON.parse(submitted.stdout) as { runId: string };

    const status = await runTwinflow(env, 'status', runId);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('no worker is serving the twinflow queue');

    await spawnWorker(env, 'cpu', cleanups, { workflows: true });
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const done = (await new Client({ connection }).workflow.getHandle(runId).result()) as RunStatus;
    expect(done.state).toBe('succeeded');
    await expect.poll(async () => (await runTwinflow(env, 'list')).stdout, { timeout: 10_000 }).toMatch(new RegExp(`${runId}\\s+hello\\s+succeeded`));
  });

  it('never leaves a server behind when twinflow dev is killed, and reclaims one orphaned without its watchdog', async () => {
    const home = await tempHome();
    const port = await freePort();
    const dev = await startDev(home, port);
    const server = await serverPid(home);
    dev.kill('SIGKILL');
    await expect.poll(() => isAlive(server), { timeout: 20_000 }).toBe(false);
    await expect.poll(() => portInUse(port), { timeout: 5_000 }).toBe(false);

    const again = await startDev(home, port);
    const second = await serverPid(home);
    for (const pid of await watchdogOf(second)) process.kill(pid, 'SIGKILL');
    again.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(isAlive(second)).toBe(true);
    const third = await startDev(home, port);
    expect(isAlive(second)).toBe(false);
    third.kill('SIGINT');
    expect(await exited(third)).toBe(0);
  });

  it('runs a stage again after Ctrl-C on twinflow dev stopped it mid-way and dev started again', async () => {
    const home = await tempHome();
    const port = await freePort();
    const scratch = path.join(home, 'scratch');
    await fs.mkdir(scratch);
    const file = await pipelineFile(home, 'slow', `
name: slow
stages:
  train:
    uses: core/shell
    with:
      run: |
        n=$(ls ${scratch} | wc -l); touch ${scratch}/attempt-$n
        if [ "$n" -gt 0 ]; then echo '{"attempt": '$n'}'; exit 0; fi
        sleep 120
`);
    const env = { address: `127.0.0.1:${port}`, home };
    const dev = await startDev(home, port);
    const { runId } = JSON.parse((await runTwinflow(env, 'run', file, '--json')).stdout) as { runId: string };
    await expect.poll(() => fs.readdir(scratch), { timeout: 30_000 }).toHaveLength(1);
    dev.kill('SIGINT');
    expect(await exited(dev)).toBe(0);

    await startDev(home, port);
    const connection = await Connection.connect({ address: env.address });
    cleanups.push(() => connection.close());
    const done = (await new Client({ connection }).workflow.getHandle(runId).result()) as RunStatus;
    expect(done.state).toBe('succeeded');
    expect(done.stages.train!.outputs).toEqual({ attempt: 1 });
    expect(done.stages.train!.events.map((e) => e.event)).toEqual(['worker-stopped']);
  });
});
