import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { lmmsEvalRunKind } from '../../engine/kinds/evaluate.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { cancelled, toolOutputInvalid } from '../failures.js';
import { lmmsEvalCommand } from '../fgvqa/lmms-eval.js';
import { runLmmsEvalProcess } from '../fgvqa/lmms-eval-process.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { folderOnThisHost } from '../store/folder-input.js';

export const LMMS_EVAL_RESULTS_MEDIA_TYPE = 'application/x-lmms-eval-results+json';
export const LMMS_EVAL_SAMPLES_MEDIA_TYPE = 'application/x-lmms-eval-samples+jsonl';

/**
 * `lmms-eval/run`: lmms-eval on its own tasks, in a fresh output folder per attempt, then
 * each task's metrics from the newest `*_results.json` and its samples files, all stored.
 */
export function createLmmsEvalRun(deps: { store: ArtifactStore; home: HomeLayout; logs: StageLogs }): Implementation<typeof lmmsEvalRunKind> {
  return async function runLmmsEvalTasks(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(lmmsEvalRunKind.with, input);
    const where = `stage ${input.stageId} (lmms-eval/run)`;
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const modelArgs = spec.pretrained ? { ...spec.modelArgs, pretrained: await folderOnThisHost(deps.store, spec.pretrained, dir, 'model', where) } : spec.modelArgs;
    const output = path.join(dir, 'output');
    // A fresh output folder per attempt: the results read afterwards are this run's.
    await fs.rm(output, { recursive: true, force: true });
    const argv = lmmsEvalCommand({ ...spec, modelArgs }, {
      tasks: spec.tasks, output, ...(spec.genKwargs ? { genKwargs: spec.genKwargs } : {}), ...(spec.limit !== undefined ? { limit: spec.limit } : {}),
    });
    let progress: { done: number; total: number } | undefined;
    const beat = setInterval(() => ctx.heartbeat({ progress: { done: progress?.done ?? 0, ...(progress ? { total: progress.total } : {}), unit: 'requests', message: spec.tasks.join(', ') } }), 1_000);
    let run;
    try {
      run = await runLmmsEvalProcess(deps.logs, input, { argv, env: spec.env, where, pythonField: 'python', onProgress: (done, total) => { progress = { done, total }; } });
    } finally {
      clearInterval(beat);
    }
    if (run.cancelled) throw cancelled(`${where}: cancelled`);
    const files = (await fs.readdir(output, { recursive: true }).catch(() => [] as string[])).map(String);
    const resultsFile = files.filter((f) => f.endsWith('_results.json')).sort().pop();
    if (!resultsFile) {
      throw toolOutputInvalid(`${where}: lmms-eval exited 0 but wrote no *_results.json under ${output} (did extraArgs replace --output_path?); last lines of output:\n${run.details.logTail?.join('\n')}`, run.details);
    }
    const text = await fs.readFile(path.join(output, resultsFile), 'utf8');
    const metrics = readMetrics(text, where);
    const missing = spec.tasks.filter((t) => !(t in metrics));
    if (missing.length) throw toolOutputInvalid(`${where}: ${resultsFile} has no results for ${missing.join(', ')} (it has ${Object.keys(metrics).join(', ') || 'none'})`, run.details);
    const stem = path.basename(resultsFile).slice(0, -'_results.json'.length);
    const samples: Record<string, ArtifactRef> = {};
    let lines = 0;
    for (const f of files) {
      const m = new RegExp(`^${stem}_samples_(.+)\\.jsonl$`).exec(path.basename(f));
      if (!m || path.dirname(f) !== path.dirname(resultsFile)) continue;
      const file = path.join(output, f);
      const rows = (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean).length;
      lines += rows;
      samples[m[1]!] = { ...(await deps.store.putFile(file, LMMS_EVAL_SAMPLES_MEDIA_TYPE)), counts: { rows } };
    }
    const results = await deps.store.putBytes(text, LMMS_EVAL_RESULTS_MEDIA_TYPE);
    return {
      outputs: { metrics, results, samples, counts: { tasks: Object.keys(metrics).length, samples: lines } },
      attempt: ctx.info.attempt,
      log: run.log,
    };
  };
}

/**
 * Each task's (and group's) metrics from lmms-eval's results JSON: keys "metric,filter"
 * become "metric" for filter none, else stay "metric,filter"; stderr (and its variants),
 * aliases and values that are not numbers are left out.
 */
export function readMetrics(text: string, where: string): Record<string, Record<string, number>> {
  let parsed: { results?: Record<string, Record<string, unknown>>; groups?: Record<string, Record<string, unknown>> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (err) {
    throw toolOutputInvalid(`${where}: lmms-eval's results file is not JSON (${(err as Error).message})`);
  }
  const out: Record<string, Record<string, number>> = {};
  for (const [task, values] of Object.entries({ ...parsed.results, ...parsed.groups })) {
    const metrics: Record<string, number> = {};
    for (const [key, value] of Object.entries(values ?? {})) {
      const [metric, filter] = key.split(',');
      // lmms-eval 0.7 adds stderr variants beside stderr itself (exact_match_stderr_clt, ..._clustered).
      if (typeof value !== 'number' || !Number.isFinite(value) || !filter || /_stderr(_|$)/.test(metric!)) continue;
      metrics[filter === 'none' ? metric! : key] = value;
    }
    out[task] = metrics;
  }
  return out;
}
