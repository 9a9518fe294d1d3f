import fs from 'node:fs/promises';
import path from 'node:path';
import { Context, ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { shellInputs } from '../engine/kinds/core.js';
import type { JsonObject, Progress } from '../engine/types.js';
import type { StageActivityInput, StageActivityResult, StageFailureDetails } from './stage-io.js';
import type { HomeLayout } from './home.js';
import { StageLogs } from './stage-log.js';
import { parseInputs } from './inputs.js';
import { commandFailed, runInProcessGroup } from './process-group.js';

/** Outputs travel through Temporal history; bulk data belongs in files or the artifact store. */
export const MAX_OUTPUT_BYTES = 64 * 1024;
const PROGRESS_LINE = /^::progress::\s*(\d+)(?:\s*\/\s*(\d+))?\s*(.*)$/;

export function createShellActivity(home: HomeLayout, logs = new StageLogs(home)) {
  return async function runShell(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const spec = parseInputs(shellInputs, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    await fs.mkdir(stageDir, { recursive: true });
    const script = path.join(stageDir, 'run.sh');
    await fs.writeFile(script, spec.run);
    const log = await logs.open(
      input.runId, input.stageId,
      `attempt ${attempt} at ${new Date().toISOString()} on pid ${process.pid}`,
    );
    let lastStdout = '';
    let progress: Progress | undefined;
    const onLine = (line: string, stream: 'stdout' | 'stderr') => {
      log.line(line);
      const match = PROGRESS_LINE.exec(line);
      if (match) {
        progress = { done: Number(match[1]), total: match[2] ? Number(match[2]) : undefined, message: match[3] || undefined };
      } else if (stream === 'stdout' && line.trim() !== '') {
        lastStdout = line;
      }
    };
    // The user's script runs in its own process group; see runInProcessGroup.
    const run = runInProcessGroup({
      argv: ['bash', '--noprofile', '--norc', '-eo', 'pipefail', script],
      cwd: spec.cwd ? path.resolve(spec.cwd) : process.cwd(),
      env: {
        ...spec.env,
        ...input.shellEnv,
        TWINFLOW_RUN_ID: input.runId,
        TWINFLOW_STAGE_ID: input.stageId,
        TWINFLOW_STAGE_DIR: stageDir,
        TWINFLOW_HOME: home.root,
      },
      signal: ctx.cancellationSignal,
      onLine,
    });
    const beat = setInterval(() => ctx.heartbeat({ progress }), 1_000);
    try {
      const exit = await run;
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('stage cancelled');
      const details: StageFailureDetails = { attempt, exitCode: exit.exitCode, logTail: log.lastLines(), log: log.file };
      if (exit.exitCode !== 0) throw commandFailed('command', exit, details);
      return { outputs: parseOutputs(lastStdout, details), attempt, log: log.file };
    } finally {
      clearInterval(beat);
      await log.close();
    }
  };
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

