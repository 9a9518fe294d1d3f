import { Context } from '@temporalio/activity';
import type { StageActivityInput, StageFailureDetails, StageHeartbeat } from './stage-io.js';
import type { StageLogs } from './stage-log.js';
import { describeExit, runInProcessGroup, type GroupExit } from './process-group.js';
import { toolFailed } from './failures.js';

const HEARTBEAT_MS = 1_000;

/** One external tool run as (part of) a stage. */
export interface ToolCommand {
  /** Names the run in failures: "stage train (verl/grpo): python3 -m verl.trainer.main_ppo". */
  what: string;
  /** The program and its arguments, passed as they are (no shell parsing). */
  argv: [string, ...string[]];
  cwd: string;
  /** Added to the worker's environment. */
  env: Record<string, string>;
  /**
   * Each line of output, in order. Return `false` to keep a line out of the log (a
   * redrawn progress bar); parse progress here and report it through `heartbeat`.
   */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => boolean | void;
  /** What to heartbeat, every second while the tool runs; omitted: the caller heartbeats itself. */
  heartbeat?: () => StageHeartbeat;
  /** What to do about a failure, from its exit and the last lines of output, when it is recognisable. */
  hint?: (exit: GroupExit, tail: string[]) => string | undefined;
}

/** How a tool run ended that did not throw. */
export interface ToolRun {
  exit: GroupExit;
  /** The run was cancelled (the group was killed); the caller decides what that means for the stage. */
  cancelled: boolean;
  /** Exit code, log tail and log file, for a failure the caller raises after all. */
  details: StageFailureDetails;
  /** Path of the stage log on this host. */
  log: string;
}

/**
 * Runs an external tool the way every stage kind does: in its own process group with a
 * watchdog (a tool never outlives its worker), every line of output in the stage log
 * (shipped to the store when it is shared), heartbeats while it runs (even when it is
 * silent), cancellation kills the group, and a non-zero exit fails the stage (retryably)
 * with what to do, if known, and the last lines of output.
 */
export async function runTool(logs: StageLogs, input: StageActivityInput, cmd: ToolCommand): Promise<ToolRun> {
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const log = await logs.open(input.runId, input.stageId, `attempt ${attempt} at ${new Date().toISOString()} on pid ${process.pid}: ${cmd.argv.join(' ')}`);
  const beat = cmd.heartbeat ? setInterval(() => ctx.heartbeat(cmd.heartbeat!()), HEARTBEAT_MS) : undefined;
  try {
    const exit = await runInProcessGroup({
      argv: cmd.argv,
      cwd: cmd.cwd,
      env: cmd.env,
      signal: ctx.cancellationSignal,
      onLine: (line, stream) => {
        if (cmd.onLine?.(line, stream) !== false) log.line(line);
      },
    });
    const details: StageFailureDetails = { attempt, exitCode: exit.exitCode, logTail: log.lastLines(), log: log.file };
    const cancelled = ctx.cancellationSignal.aborted;
    if (!cancelled && exit.exitCode !== 0) throw toolRunFailed(cmd.what, exit, details, cmd.hint?.(exit, details.logTail ?? []));
    return { exit, cancelled, details, log: log.file };
  } finally {
    if (beat) clearInterval(beat);
    await log.close();
  }
}

/** The retryable failure of a tool that did not exit 0: what ended it, what to do if known, and the last lines of its output. */
export function toolRunFailed(what: string, exit: GroupExit, details: StageFailureDetails, hint?: string) {
  return toolFailed(`${what} ${describeExit(exit)}${hint ? `; ${hint}` : ''}; last ${details.logTail?.length} lines of output:\n${details.logTail?.join('\n')}`, details);
}
