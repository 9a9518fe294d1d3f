import fs from 'node:fs/promises';
import path from 'node:path';
import { Context, CancelledFailure } from '@temporalio/activity';
import { shellKind } from '../engine/kinds/core.js';
import type { JsonObject, Progress } from '../engine/types.js';
import type { StageActivityInput, StageFailureDetails } from './stage-io.js';
import type { HomeLayout } from './home.js';
import { StageLogs } from './stage-log.js';
import { parseInputs } from './inputs.js';
import { outputsTooLarge } from './failures.js';
import { runTool } from './tool-run.js';
import type { Implementation } from './kind-implementation.js';

/** Outputs travel through Temporal history; bulk data belongs in files or the artifact store. */
export const MAX_OUTPUT_BYTES = 64 * 1024;
const PROGRESS_LINE = /^::progress::\s*(\d+)(?:\s*\/\s*(\d+))?\s*(.*)$/;

export function createShellActivity(home: HomeLayout, logs = new StageLogs(home)): Implementation<typeof shellKind> {
  return async function runShell(input: StageActivityInput) {
    const attempt = Context.current().info.attempt;
    const spec = parseInputs(shellKind.with, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    await fs.mkdir(stageDir, { recursive: true });
    const script = path.join(stageDir, 'run.sh');
    await fs.writeFile(script, spec.run);
    let lastStdout = '';
    let progress: Progress | undefined;
    // The user's script runs in its own process group; see runTool.
    const run = await runTool(logs, input, {
      what: 'command',
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
      onLine: (line, stream) => {
        const match = PROGRESS_LINE.exec(line);
        if (match) {
          progress = { done: Number(match[1]), total: match[2] ? Number(match[2]) : undefined, message: match[3] || undefined };
        } else if (stream === 'stdout' && line.trim() !== '') {
          lastStdout = line;
        }
      },
      heartbeat: () => ({ progress }),
    });
    if (run.cancelled) throw new CancelledFailure('stage cancelled');
    return { outputs: parseOutputs(lastStdout, run.details), attempt, log: run.log };
  };
}

/** The last stdout line is the stage's outputs when it is a JSON object; otherwise there are none. */
function parseOutputs(lastLine: string, details: StageFailureDetails): JsonObject {
  const text = lastLine.trim();
  if (!text.startsWith('{')) return {};
  if (Buffer.byteLength(text) > MAX_OUTPUT_BYTES) {
    throw outputsTooLarge(
      `the JSON outputs line is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_OUTPUT_BYTES}. ` +
      'Write bulk data to a file (e.g. under $TWINFLOW_STAGE_DIR) and output its path instead.',
      details,
    );
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as JsonObject;
  } catch {
    // A line that merely starts with "{" is ordinary output, not a malformed result.
  }
  return {};
}
