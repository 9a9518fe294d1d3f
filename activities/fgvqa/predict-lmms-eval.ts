import fs from 'node:fs/promises';
import path from 'node:path';
import { StageLogs } from '../stage-log.js';
import { runLmmsEvalProcess } from './lmms-eval-process.js';
import { folderOnThisHost } from '../store/folder-input.js';
import { findSamplesFile, lmmsEvalArgv, readLmmsEvalSamples, writeLmmsEvalTask } from './lmms-eval.js';
import type { BackendResult, BackendRun, PredictDeps } from './predict.js';
import { toolOutputInvalid } from '../failures.js';

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
  const tool = await runLmmsEvalProcess(deps.logs ?? new StageLogs(deps.home), input, {
    argv, env: o.env, where, pythonField: 'lmmsEval.python',
    onProgress: (done, total) => run.progress(Math.floor((done / total) * todo.length)),
  });
  if (tool.cancelled) return { counts: { asked: todo.length } };
  const details = tool.details;
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
