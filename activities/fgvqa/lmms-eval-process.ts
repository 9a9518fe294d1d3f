import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { toolFailed } from '../failures.js';
import { runTool, type ToolRun } from '../tool-run.js';
import { parseLmmsEvalProgress } from './lmms-eval.js';

/** The line lmms_eval.__main__.cli_evaluate logs for an exception it catches: "Error during evaluation: <e>. Please set ...". */
const EVALUATION_ERROR = /Error during evaluation: (.*?)(?:\. Please set `--verbosity=DEBUG`.*)?$/;

/**
 * One `python -m lmms_eval` run as a stage runs it (fgvqa/predict's lmms-eval backend,
 * lmms-eval/run): through runTool, its progress bar kept in the log once per percent and
 * handed to `onProgress`, and an error lmms-eval catches, logs and then exits 0 on (unless
 * --verbosity DEBUG) failing the stage like a crash, retryably: an out-of-memory GPU or a
 * flaky download may pass next time.
 */
export async function runLmmsEvalProcess(
  logs: StageLogs, input: StageActivityInput,
  run: { argv: [string, ...string[]]; env: Record<string, string>; where: string; pythonField: string; onProgress?: (done: number, total: number) => void },
): Promise<ToolRun> {
  let shown = -1;
  let evaluationError: string | undefined;
  const python = run.argv[0];
  const tool = await runTool(logs, input, {
    what: `${run.where}: ${python} -m lmms_eval`,
    argv: run.argv,
    cwd: process.cwd(),
    env: { PYTHONUNBUFFERED: '1', ...run.env },
    onLine: (line) => {
      const reported = EVALUATION_ERROR.exec(line);
      if (reported) evaluationError = reported[1];
      const bar = parseLmmsEvalProgress(line);
      // A redrawn bar is a line per redraw; the log keeps one per percent.
      if (!bar) return true;
      run.onProgress?.(bar.done, bar.total);
      const percent = Math.floor((100 * bar.done) / bar.total);
      if (percent === shown) return false;
      shown = percent;
      return true;
    },
    hint: (exit, tail) => lmmsEvalHint(exit.exitCode, tail, python, run.pythonField),
  });
  if (!tool.cancelled && evaluationError !== undefined) {
    const { details } = tool;
    const advice = lmmsEvalHint(0, details.logTail ?? [], python, run.pythonField);
    throw toolFailed(`${run.where}: lmms-eval reported an error during evaluation (it exits 0 when it does): ${evaluationError}` +
      `${advice ? `; ${advice}` : ''}; last ${details.logTail?.length} lines of output:\n${details.logTail?.join('\n')}`, details);
  }
  return tool;
}

/** What to do about the commonest ways a run fails before it starts. */
function lmmsEvalHint(code: number | undefined, tail: string[], python: string, field: string): string | undefined {
  const text = tail.join('\n');
  if (code === 127) return `${python} was not found on this host: set ${field} to the interpreter of the environment that has lmms-eval`;
  if (/No module named '?lmms_eval'?/.test(text)) return `lmms-eval is not installed for ${python}: install it there (github.com/EvolvingLMMs-Lab/lmms-eval) or set ${field} to the environment that has it`;
  if (/No module named '?accelerate'?/.test(text)) return `processes > 1 needs accelerate installed for ${python}`;
  return undefined;
}
