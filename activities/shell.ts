import { createInterface } from 'node:readline';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context, ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { execa } from 'execa';
import { shellInputs } from '../engine/kinds/core.js';
import type { JsonObject, Progress } from '../engine/types.js';
import type { StageActivityInput, StageActivityResult, StageFailureDetails } from './stage-io.js';
import type { HomeLayout } from './home.js';
import { StageLog } from './stage-log.js';
import { parseInputs } from './inputs.js';

/** Outputs travel through Temporal history; bulk data belongs in files or the artifact store. */
export const MAX_OUTPUT_BYTES = 64 * 1024;
const KILL_GRACE_MS = 5_000;
const PROGRESS_LINE = /^::progress::\s*(\d+)(?:\s*\/\s*(\d+))?\s*(.*)$/;

/*
 * The user's script runs in its own process group with a watchdog beside it: if the
 * worker dies (even by SIGKILL), the watchdog kills the group, so a crashed worker never
 * leaves a trainer running that its replacement would start a second time.
 */
const WRAPPER = `
( while kill -0 "$TWINFLOW_WORKER_PID" 2>/dev/null; do sleep 1; done; kill -TERM -- -$$ ) </dev/null >/dev/null 2>&1 &
__twinflow_watchdog=$!
bash --noprofile --norc -eo pipefail "$1"
__twinflow_code=$?
kill "$__twinflow_watchdog" 2>/dev/null
exit $__twinflow_code
`;

export function createShellActivity(home: HomeLayout) {
  return async function runShell(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const spec = parseInputs(shellInputs, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    await fs.mkdir(stageDir, { recursive: true });
    const script = path.join(stageDir, 'run.sh');
    await fs.writeFile(script, spec.run);
    const log = await StageLog.open(
      home.logFile(input.runId, input.stageId),
      `attempt ${attempt} at ${new Date().toISOString()} on pid ${process.pid}`,
    );
    let lastStdout = '';
    let progress: Progress | undefined;
    const child = execa('bash', ['--noprofile', '--norc', '-c', WRAPPER, 'twinflow-stage', script], {
      cwd: spec.cwd ? path.resolve(spec.cwd) : process.cwd(),
      env: {
        ...spec.env,
        ...input.shellEnv,
        TWINFLOW_RUN_ID: input.runId,
        TWINFLOW_STAGE_ID: input.stageId,
        TWINFLOW_STAGE_DIR: stageDir,
        TWINFLOW_HOME: home.root,
        TWINFLOW_WORKER_PID: String(process.pid),
      },
      detached: true,
      reject: false,
      buffer: false,
      stdin: 'ignore',
    });
    const onLine = (stream: 'stdout' | 'stderr') => (line: string) => {
      log.line(line);
      const match = PROGRESS_LINE.exec(line);
      if (match) {
        progress = { done: Number(match[1]), total: match[2] ? Number(match[2]) : undefined, message: match[3] || undefined };
      } else if (stream === 'stdout' && line.trim() !== '') {
        lastStdout = line;
      }
    };
    const closed = Promise.all([
      readLines(child.stdout, onLine('stdout')),
      readLines(child.stderr, onLine('stderr')),
    ]);
    const beat = setInterval(() => ctx.heartbeat({ progress }), 1_000);
    const killGroup = () => killProcessGroup(child.pid);
    ctx.cancellationSignal.addEventListener('abort', killGroup);
    try {
      const result = await child;
      await closed;
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('stage cancelled');
      const details: StageFailureDetails = { attempt, exitCode: result.exitCode, logTail: log.lastLines(), log: log.file };
      if (result.exitCode !== 0) {
        const why = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
        throw ApplicationFailure.create({
          type: 'StageFailed',
          message: `command ${why}; last ${details.logTail?.length} lines of output:\n${details.logTail?.join('\n')}`,
          details: [details],
        });
      }
      return { outputs: parseOutputs(lastStdout, details), attempt, log: log.file };
    } finally {
      clearInterval(beat);
      ctx.cancellationSignal.removeEventListener('abort', killGroup);
      await log.close();
    }
  };
}

async function readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): Promise<void> {
  if (!stream) return;
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) onLine(line);
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

/** The last stdout line is the stage's outputs when it is a JSON object; otherwise there are none. */
function parseOutputs(lastLine: string, details: StageFailureDetails): JsonObject {
  const text = lastLine.trim();
  if (!text.startsWith('{')) return {};
  if (Buffer.byteLength(text) > MAX_OUTPUT_BYTES) {
    throw ApplicationFailure.create({
      type: 'OutputsTooLarge',
      nonRetryable: true,
      message: `the JSON outputs line is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_OUTPUT_BYTES}. ` +
        'Write bulk data to a file (e.g. under $TWINFLOW_STAGE_DIR) and output its path instead.',
      details: [details],
    });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as JsonObject;
  } catch {
    // A line that merely starts with "{" is ordinary output, not a malformed result.
  }
  return {};
}

