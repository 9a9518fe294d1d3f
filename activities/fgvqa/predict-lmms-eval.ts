import fs from 'node:fs/promises';
import path from 'node:path';
import { StageLogs } from '../stage-log.js';
import { runTool } from '../tool-run.js';
import { folderOnThisHost } from '../store/folder-input.js';
import { findSamplesFile, lmmsEvalArgv, parseLmmsEvalProgress, readLmmsEvalSamples, writeLmmsEvalTask } from './lmms-eval.js';
import type { BackendResult, BackendRun, PredictDeps } from './predict.js';
import { toolFailed, toolOutputInvalid } from '../failures.js';

/**
 * Backend lmms-eval: one run of `python -m lmms_eval` over the queries still unanswered,
 * launched like core/shell launches a script (own process group, watchdog, cancellation
 * kills the group), its output in the stage log and its progress bar in the heartbeats.
 * lmms-eval writes its samples only at the end, so the answers are kept when the run
 * succeeds; a failed run is retried from the same unanswered queries.
 */
export async function runLmmsEval(deps: PredictDeps, run: BackendRun): Promise<BackendResult> {
  const { input, todo } = run;
  if (todo.length === 0) return { counts: { asked: 0 } };
  const where = `stage ${input.stageId} (fgvqa/predict, lmms-eval)`;
  const given = run.opts.lmmsEval!;
  // A trained model travels as a folder artifact: pulled here once, then named like any local model.
  const o = given.pretrained
    ? { ...given, modelArgs: { ...given.modelArgs, pretrained: await folderOnThisHost(deps.store, given.pretrained, run.dir, 'model', where) } }
    : given;
  const taskDir = path.join(run.dir, 'lmms-eval', 'task');
  const output = path.join(run.dir, 'lmms-eval', 'output');
  await writeLmmsEvalTask(taskDir, todo, run.opts.maxTokens);
  // A fresh output folder per attempt: the samples read afterwards are this run's.
  await fs.rm(output, { recursive: true, force: true });
  const argv = lmmsEvalArgv(o, { include: taskDir, output }, run.opts.maxTokens);
  let shown = -1;
  // lmms-eval catches what fails during evaluation, logs it and exits 0 (unless --verbosity DEBUG).
  let evaluationError: string | undefined;
  const tool = await runTool(deps.logs ?? new StageLogs(deps.home), input, {
    what: `${where}: ${argv[0]} -m lmms_eval`,
    argv,
    cwd: process.cwd(),
    env: { PYTHONUNBUFFERED: '1', ...o.env },
    onLine: (line) => {
      const reported = EVALUATION_ERROR.exec(line);
      if (reported) evaluationError = reported[1];
      const bar = parseLmmsEvalProgress(line);
      // A redrawn bar is a line per redraw; the log keeps one per percent.
      if (!bar) return true;
      run.progress(Math.floor((bar.done / bar.total) * todo.length));
      const percent = Math.floor((100 * bar.done) / bar.total);
      if (percent === shown) return false;
      shown = percent;
      return true;
    },
    hint: (exit, tail) => hint(exit.exitCode, tail, argv[0]),
  });
  if (tool.cancelled) return { counts: { asked: todo.length } };
  const details = tool.details;
  if (evaluationError !== undefined) {
    // Retryable, like a crash: an out-of-memory GPU or a flaky download may pass next time.
    const advice = hint(0, details.logTail ?? [], argv[0]);
    throw toolFailed(`${where}: lmms-eval reported an error during evaluation (it exits 0 when it does): ${evaluationError}` +
      `${advice ? `; ${advice}` : ''}; last ${details.logTail?.length} lines of output:\n${details.logTail?.join('\n')}`, details);
  }
  const found = await findSamplesFile(output);
  if (!found) {
    throw toolOutputInvalid(`${where}: lmms-eval exited 0 but wrote no *_samples_*.jsonl under ${output} (did extraArgs replace --output_path or drop --log_samples?); ` +
        `last lines of output:\n${details.logTail?.join('\n')}`, details);
  }
  await keepSamples(run, found.samples, where);
  return {
    counts: { asked: todo.length },
    outputs: { lmmsEval: { samples: found.samples, ...(found.results ? { results: found.results } : {}), task: taskDir } },
  };
}

/** Doc ids count the lines of the dataset we wrote, i.e. `todo` in order; the target (the query id) must agree. */
async function keepSamples(run: BackendRun, file: string, where: string): Promise<void> {
  const { samples, problems } = await readLmmsEvalSamples(file);
  const answered = new Set<string>();
  for (const s of samples) {
    const q = run.todo[s.docId];
    if (!q || (s.target !== undefined && s.target !== q.id)) {
      problems.push(`doc_id ${s.docId}${s.target === undefined ? '' : ` (target ${s.target})`} is not query ${q?.id ?? `#${s.docId}`} of the dataset written for this run`);
    } else if (!answered.has(q.id)) {
      answered.add(q.id);
      run.keep(q.id, s.output);
    }
  }
  if (problems.length) {
    throw toolOutputInvalid(`${where}: ${file} does not match the queries written for the run: ${problems.slice(0, 5).join('; ')}`);
  }
  for (const q of run.todo) if (!answered.has(q.id)) run.fail(q.id, `not in lmms-eval's samples file ${file}`);
}

/** The line lmms_eval.__main__.cli_evaluate logs for an exception it catches: "Error during evaluation: <e>. Please set ...". */
const EVALUATION_ERROR = /Error during evaluation: (.*?)(?:\. Please set `--verbosity=DEBUG`.*)?$/;

/** What to do about the commonest ways a run fails before it starts. */
function hint(code: number | undefined, tail: string[], python: string): string | undefined {
  const text = tail.join('\n');
  if (code === 127) return `${python} was not found on this host: set lmmsEval.python to the interpreter of the environment that has lmms-eval`;
  if (/No module named '?lmms_eval'?/.test(text)) return `lmms-eval is not installed for ${python}: install it there (github.com/EvolvingLMMs-Lab/lmms-eval) or set lmmsEval.python to the environment that has it`;
  if (/No module named '?accelerate'?/.test(text)) return `processes > 1 needs accelerate installed for ${python}`;
  return undefined;
}
