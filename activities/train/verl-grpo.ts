import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { grpoKind } from '../../engine/kinds/train.js';
import type { ArtifactStore } from '../artifact-store.js';
import { cancelled, invalidInput, toolOutputInvalid } from '../failures.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { putTree } from '../store/tree.js';
import { runTool } from '../tool-run.js';
import type { GroupExit } from '../process-group.js';
import { folderOnThisHost, latestCheckpoint, stepFolder } from '../store/folder-input.js';
import { describeStep, follow, JsonlTail, parseStep, type StepMetrics } from './metrics-tail.js';
import { grpoArgv, mergeArgv } from './verl-args.js';

export const METRICS_MEDIA_TYPE = 'application/x-twinflow-verl-metrics+jsonl';
/** verl's RayPPOTrainer prints this once it has sized the dataloader. */
const TOTAL_STEPS = /Total training steps:\s*(\d+)/;

/**
 * `verl/grpo`: one verl run, resumed (verl's `trainer.resume_mode=auto`) from the newest
 * checkpoint the stage's earlier attempts left, its file logger followed for heartbeats,
 * then the newest checkpoint's actor merged into a Hugging Face folder and stored as a
 * folder artifact. A finished training is recorded in the stage folder, so an attempt that
 * died while merging never trains again.
 */
export function createGrpoTraining(deps: { store: ArtifactStore; home: HomeLayout; logs: StageLogs }): Implementation<typeof grpoKind> {
  const { store } = deps;
  return async function trainGrpo(input: StageActivityInput) {
    const attempt = Context.current().info.attempt;
    const spec = parseInputs(grpoKind.with, input);
    const where = `stage ${input.stageId} (verl/grpo)`;
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const dataset = await folderOnThisHost(store, spec.dataset, dir, 'dataset', where);
    const trainFile = await dataFile(dataset, spec.trainFile, 'trainFile', where);
    const valFile = await dataFile(dataset, spec.valFile, 'valFile', where);
    const model = typeof spec.model === 'string' ? spec.model : await folderOnThisHost(store, spec.model, dir, 'model', where);
    const checkpoints = path.resolve(spec.checkpoints ?? path.join(dir, 'checkpoints'));
    const metricsFile = path.join(dir, 'metrics.jsonl');
    const env = { PYTHONUNBUFFERED: '1', VERL_FILE_LOGGER_PATH: metricsFile, ...spec.env };
    const resumedFrom = await latestCheckpoint(checkpoints);

    let trained = await readTrained(dir, checkpoints);
    if (trained === undefined) {
      let total: number | undefined;
      let last: StepMetrics | undefined;
      const tail = new JsonlTail(metricsFile);
      // Lines from earlier attempts are history: progress counts from what this one logs.
      await tail.read();
      const stop = follow(tail, (m) => { last = m; });
      let run;
      try {
        run = await runTool(deps.logs, input, {
          what: `${where}: ${spec.python} -m verl.trainer.main_ppo`,
          argv: grpoArgv(spec, {
            trainFile, valFile, model, checkpoints,
            experiment: spec.experiment ?? `${input.runId}-${input.stageId}`.replace(/[^\w.-]+/g, '-'),
          }),
          cwd: dir,
          env,
          onLine: (line) => {
            const m = TOTAL_STEPS.exec(line);
            if (m) total = Number(m[1]);
          },
          heartbeat: () => ({
            progress: { done: last?.step ?? resumedFrom ?? 0, ...(total ? { total } : {}), unit: 'steps', ...(describeStep(last) ? { message: describeStep(last) } : {}) },
            ...(last ? { metrics: last.data } : {}),
            ...(resumedFrom !== undefined ? { resumedFrom } : {}),
          }),
          hint: (exit, lines) => verlHint(exit, lines, spec.python),
        });
      } finally {
        await stop();
      }
      const step = await latestCheckpoint(checkpoints);
      if (run.cancelled) throw cancelled(`${where}: cancelled at step ${last?.step ?? step ?? 0}; its checkpoints stay in ${checkpoints}, and a retry resumes from the newest`);
      if (step === undefined) {
        throw toolOutputInvalid(`${where}: verl exited 0 but left no checkpoint in ${checkpoints} (no latest_checkpointed_iteration.txt): was trainer.save_freq overridden to -1?`, run.details);
      }
      await fs.writeFile(path.join(dir, 'trained.json'), JSON.stringify({ step, checkpoints }));
      trained = step;
    }

    const modelDir = await mergeActor(deps, input, { python: spec.python, env, checkpoints, step: trained, dir, where });
    const tree = await putTree(store, modelDir);
    const metricsText = await fs.readFile(metricsFile, 'utf8').catch(() => '');
    const metricsRef = await store.putBytes(metricsText, METRICS_MEDIA_TYPE);
    const final = lastStep(metricsText);
    return {
      outputs: {
        model: tree,
        modelDir,
        checkpoint: stepFolder(checkpoints, trained),
        metrics: { ...metricsRef, counts: { steps: final?.step ?? 0 } },
        steps: trained,
        ...(resumedFrom !== undefined ? { resumedFrom } : {}),
        final: final?.data ?? {},
      },
      attempt,
      log: deps.logs.file(input.runId, input.stageId),
    };
  };
}

async function dataFile(dataset: string, rel: string, field: string, where: string): Promise<string> {
  const file = path.resolve(dataset, rel);
  if (!(await fs.stat(file).then((s) => s.isFile(), () => false))) {
    throw invalidInput(`${where}: with.${field}: ${rel} is not in the dataset ${dataset}; build it with twin/assemble \`exports: [verl]\` (or name the file the dataset has)`);
  }
  return file;
}

/** The step a previous attempt finished training at, if its checkpoint is still there. */
async function readTrained(dir: string, checkpoints: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(dir, 'trained.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const { step, checkpoints: where } = JSON.parse(text) as { step: number; checkpoints: string };
  if (where !== checkpoints) return undefined;
  return (await fs.stat(stepFolder(checkpoints, step)).then(() => true, () => false)) ? step : undefined;
}

interface MergeJob { python: string; env: Record<string, string>; checkpoints: string; step: number; dir: string; where: string }

/** `verl.model_merger merge` into a partial folder, moved into place once it has a config.json: a folder found there is whole. */
async function mergeActor(deps: { logs: StageLogs }, input: StageActivityInput, job: MergeJob): Promise<string> {
  const target = path.join(job.dir, 'merged', `global_step_${job.step}`);
  if (await fs.stat(path.join(target, 'config.json')).then(() => true, () => false)) return target;
  const partial = `${target}.partial`;
  await fs.rm(partial, { recursive: true, force: true });
  await fs.mkdir(path.dirname(target), { recursive: true });
  const actor = path.join(stepFolder(job.checkpoints, job.step), 'actor');
  const run = await runTool(deps.logs, input, {
    what: `${job.where}: ${job.python} -m verl.model_merger merge`,
    argv: mergeArgv(job.python, actor, partial),
    cwd: job.dir,
    env: job.env,
    heartbeat: () => ({ progress: { done: job.step, total: job.step, unit: 'steps', message: `merging global_step_${job.step} into a Hugging Face folder` } }),
    hint: (exit, lines) => verlHint(exit, lines, job.python),
  });
  if (run.cancelled) throw cancelled(`${job.where}: cancelled while merging global_step_${job.step}; a retry merges again`);
  if (!(await fs.stat(path.join(partial, 'config.json')).then(() => true, () => false))) {
    throw toolOutputInvalid(`${job.where}: verl.model_merger exited 0 but ${partial} has no config.json`, run.details);
  }
  await fs.rm(target, { recursive: true, force: true });
  await fs.rename(partial, target);
  return target;
}

/** The last whole step record (a torn last line is skipped). */
function lastStep(text: string): StepMetrics | undefined {
  return text.split('\n').map(parseStep).filter((m): m is StepMetrics => m !== undefined).at(-1);
}

/** What to do about the commonest ways a verl run fails. */
export function verlHint(exit: GroupExit, lines: string[], python: string): string | undefined {
  const text = lines.join('\n');
  if (exit.exitCode === 127) return `${python} was not found on this host: set with.python to the interpreter of the environment that has verl`;
  if (/No module named '?verl'?/.test(text)) return `verl is not installed for ${python}: install it there (pip install verl[vllm]) or set with.python`;
  if (/CUDA out of memory|OutOfMemoryError/.test(text)) return 'the GPUs ran out of memory: lower microBatchPerGpu or gpuMemoryUtilization, or raise tensorParallel';
  if (/Could not override|Key '.*' is not in struct/.test(text)) return 'verl refused an override: check with.overrides (prefix + to add a key verl does not have)';
  return undefined;
}
