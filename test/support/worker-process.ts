import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '../..');

/**
 * `worker.ts` in a process of its own (node --import tsx, so a signal reaches the worker
 * itself, not a wrapper), resolved once it polls. `cleanups` gets a kill for the end of the file.
 */
export function spawnWorker(
  env: { address: string; home: string },
  queue: string,
  cleanups: Array<() => Promise<unknown>>,
  opts: {
    workflows?: boolean;
    /** More environment (a store's TWINFLOW_STORE and AWS_* settings). */
    env?: Record<string, string>;
    /** Folders this worker must not see: it runs in its own mount namespace with a tmpfs over each (needs root). */
    hide?: string[];
    /** More worker.ts flags. */
    args?: string[];
  } = {},
): Promise<ChildProcess> {
  const queues = queue.split(' ');
  const args = ['--import', 'tsx', 'worker.ts', '--queue', ...queues, ...(opts.workflows ? [] : ['--no-workflows']), ...(opts.args ?? [])];
  // `unshare -m` execs sh in a new mount namespace; sh mounts the tmpfs and execs node, so the child is the worker itself.
  const hide = 'IFS=:; for d in $TWINFLOW_TEST_HIDE; do mount -t tmpfs tmpfs "$d" || exit 97; done; exec "$@"';
  const [cmd, argv] = opts.hide?.length
    ? ['unshare', ['-m', '--propagation', 'private', 'sh', '-c', hide, 'sh', process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(cmd, argv, {
    cwd: repo,
    env: { ...process.env, ...opts.env, TEMPORAL_ADDRESS: env.address, TWINFLOW_HOME: env.home, ...(opts.hide ? { TWINFLOW_TEST_HIDE: opts.hide.join(':') } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('twinflow worker on')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${out}`)));
  });
}

/** Resolves with the exit code once the process has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** The pid a stage script wrote to `file`, once it is there (up to 30 s). */
export async function readPid(file: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (pid) return pid;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no pid in ${file}`);
}
