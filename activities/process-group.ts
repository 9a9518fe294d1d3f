import { execa } from 'execa';
import { readLines } from './data/lines.js';
import { currentStageLock } from './stage-lock.js';
import { ATTEMPT_ENV } from './process-groups.js';
import { currentGpus } from './gpu-pool.js';

const KILL_GRACE_MS = 5_000;

/*
 * The command runs in its own process group with a watchdog beside it: if the worker
 * dies (even by SIGKILL), or the group's leader is killed (a cancel), the watchdog sends
 * the group SIGTERM and, after the grace period, SIGKILL, so a tool that ignores SIGTERM
 * cannot outlive its worker and write on while the next attempt runs. The watchdog
 * ignores SIGTERM itself (it is in the group it signals); the wrapper stops it with
 * SIGKILL when the command ends normally.
 */
const WRAPPER = `
( trap '' TERM
  while kill -0 "$TWINFLOW_WORKER_PID" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1; done
  kill -TERM -- -$$ 2>/dev/null; sleep "$TWINFLOW_KILL_GRACE"; kill -KILL -- -$$ 2>/dev/null ) </dev/null >/dev/null 2>&1 &
__twinflow_watchdog=$!
# Out of the job table: bash would otherwise print "Killed ..." into the stage's output now and then, when it is stopped below.
disown "$__twinflow_watchdog"
"$@"
__twinflow_code=$?
kill -KILL "$__twinflow_watchdog" 2>/dev/null
exit $__twinflow_code
`;

/** How a command run by {@link runInProcessGroup} ended. */
export interface GroupExit {
  exitCode: number | undefined;
  /** The signal that killed it, if one did. */
  signal: string | undefined;
}

export interface GroupCommand {
  /** The program and its arguments, passed as they are (no shell parsing). */
  argv: [string, ...string[]];
  cwd: string;
  /** Added to the worker's environment. */
  env: Record<string, string>;
  /** Aborting it kills the whole group (SIGTERM, then SIGKILL after 5 s). */
  signal: AbortSignal;
  /** Every line of output; a carriage return ends a line too, so progress bars arrive as they redraw. */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
}

/** Runs a long command the way stage activities do: own process group, watchdog, cancellation kills the group. */
export async function runInProcessGroup(cmd: GroupCommand): Promise<GroupExit> {
  const lock = currentStageLock();
  const gpus = currentGpus();
  const child = execa('bash', ['--noprofile', '--norc', '-c', WRAPPER, 'twinflow-stage', ...cmd.argv], {
    cwd: cmd.cwd,
    env: {
      ...cmd.env,
      // The devices the stage holds (stage-gpus.ts), over whatever the stage's own env says.
      ...(gpus ? { CUDA_VISIBLE_DEVICES: gpus.join(',') } : {}),
      TWINFLOW_WORKER_PID: String(process.pid),
      TWINFLOW_KILL_GRACE: String(KILL_GRACE_MS / 1000),
      // Tells a later attempt that this group is the one to stop (see stage-lock.ts).
      ...(lock ? { [ATTEMPT_ENV]: lock.token } : {}),
    },
    detached: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  const closed = Promise.all([
    readToolLines(child.stdout, (line) => cmd.onLine(line, 'stdout')),
    readToolLines(child.stderr, (line) => cmd.onLine(line, 'stderr')),
  ]);
  const killGroup = () => killProcessGroup(child.pid);
  cmd.signal.addEventListener('abort', killGroup);
  try {
    if (lock && child.pid) await lock.recordGroup(child.pid);
    const result = await child;
    await closed;
    return { exitCode: result.exitCode, signal: result.signal };
  } finally {
    cmd.signal.removeEventListener('abort', killGroup);
  }
}

/** "exited with code 7" or "was killed by SIGTERM". */
export function describeExit(exit: GroupExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
}

/** A tool's line longer than this reaches the log as a note of its length (a line of a GB must not kill the worker). */
const MAX_TOOL_LINE_BYTES = 1024 * 1024;

async function readToolLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): Promise<void> {
  if (!stream) return;
  const lines = readLines(stream as AsyncIterable<Uint8Array>, { maxLineBytes: MAX_TOOL_LINE_BYTES, carriageReturnEndsLine: true });
  for await (const l of lines) onLine(l.tooLong === undefined ? l.text : `[twinflow: a line of ${l.tooLong} bytes was left out of the log]`);
}

function killProcessGroup(pid: number | undefined): void {
  if (!pid) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is already gone.
    }
  };
  signal('SIGTERM');
  setTimeout(() => signal('SIGKILL'), KILL_GRACE_MS).unref();
}
