import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { stringify } from 'yaml';
import { sftKind } from '../../engine/kinds/train.js';
import type { ArtifactStore } from '../artifact-store.js';
import { mapBounded } from '../data/concurrency.js';
import { cancelled, invalidInput, toolOutputInvalid } from '../failures.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { GroupExit } from '../process-group.js';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { putTree } from '../store/tree.js';
import { runTool } from '../tool-run.js';
import { folderOnThisHost } from '../store/folder-input.js';
import { batchProblem, deepspeedConfig, sftConfig } from './llamafactory-config.js';
import { follow, JsonlTail } from './metrics-tail.js';

export const TRAINER_LOG_MEDIA_TYPE = 'application/x-twinflow-llamafactory-log+jsonl';

/** A line of LLaMA-Factory's trainer_log.jsonl (its LogCallback). */
interface TrainerLog {
  current_steps: number;
  total_steps: number;
  loss?: number;
  lr?: number;
  epoch?: number;
}

const parseLog = (line: string): TrainerLog | undefined => {
  try {
    const v = JSON.parse(line) as TrainerLog;
    return typeof v?.current_steps === 'number' && typeof v.total_steps === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
};

/**
 * `llamafactory/sft`: writes the run's YAML and DeepSpeed config into the stage folder,
 * runs `llamafactory-cli train` (resuming from the newest `checkpoint-N` an earlier attempt
 * left), follows its trainer log for heartbeats, and stores the final model folder without
 * its checkpoints. A run that finished (train_results.json) is never trained again.
 */
export function createSftTraining(deps: { store: ArtifactStore; home: HomeLayout; logs: StageLogs }): Implementation<typeof sftKind> {
  const { store } = deps;
  return async function trainSft(input: StageActivityInput) {
    const attempt = Context.current().info.attempt;
    const spec = parseInputs(sftKind.with, input);
    const where = `stage ${input.stageId} (llamafactory/sft)`;
    const problem = batchProblem(spec);
    if (problem) throw invalidInput(`${where}: ${problem}`);
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const dataset = await folderOnThisHost(store, spec.dataset, dir, 'dataset', where);
    await checkDatasetInfo(dataset, spec.datasetName, where);
    const model = typeof spec.model === 'string' ? spec.model : await folderOnThisHost(store, spec.model, dir, 'model', where);
    const outputDir = path.join(dir, 'output');
    const logFile = path.join(outputDir, 'trainer_log.jsonl');
    const config = path.join(dir, 'train.yaml');
    let resumedFrom: number | undefined;

    if (!(await exists(path.join(outputDir, 'train_results.json')))) {
      resumedFrom = await latestCheckpoint(outputDir);
      // LLaMA-Factory refuses a non-empty output folder without a checkpoint (an attempt that died before its first save).
      if (resumedFrom === undefined) await fs.rm(outputDir, { recursive: true, force: true });
      let deepspeed: string | undefined;
      if (spec.deepspeed !== 'none') {
        deepspeed = path.join(dir, `ds_${spec.deepspeed}_config.json`);
        await fs.writeFile(deepspeed, `${JSON.stringify(deepspeedConfig(spec.deepspeed), null, 2)}\n`);
      }
      const yaml = sftConfig(spec, {
        model, datasetDir: dataset, outputDir, ...(deepspeed ? { deepspeed } : {}),
        ...(resumedFrom !== undefined ? { resumeFrom: path.join(outputDir, `checkpoint-${resumedFrom}`) } : {}),
      });
      await fs.writeFile(config, stringify(yaml));
      const tail = new JsonlTail(logFile, parseLog);
      let last: TrainerLog | undefined;
      const stop = follow(tail, (m) => { last = m; });
      let run;
      try {
        run = await runTool(deps.logs, input, {
          what: `${where}: ${spec.cli} train`,
          // A path is taken from the worker's folder, as every other input is; a bare name is looked up on PATH.
          argv: [spec.cli.includes('/') ? path.resolve(spec.cli) : spec.cli, 'train', config],
          cwd: dir,
          env: {
            PYTHONUNBUFFERED: '1',
            // LLaMA-Factory launches DeepSpeed only under torchrun, and without NPROC_PER_NODE torchrun starts a process per visible GPU.
            NPROC_PER_NODE: String(spec.gpus),
            ...(spec.gpus > 1 || spec.deepspeed !== 'none' ? { FORCE_TORCHRUN: '1' } : {}),
            ...spec.env,
          },
          heartbeat: () => ({
            progress: {
              done: last?.current_steps ?? resumedFrom ?? 0, ...(last ? { total: last.total_steps } : {}), unit: 'steps',
              ...(last?.loss !== undefined ? { message: `loss ${last.loss.toFixed(4)}${last.epoch !== undefined ? `, epoch ${last.epoch.toFixed(2)}` : ''}` } : {}),
            },
            ...(resumedFrom !== undefined ? { resumedFrom } : {}),
          }),
          hint: (exit, lines) => sftHint(exit, lines, spec.cli),
        });
      } finally {
        await stop();
      }
      if (run.cancelled) throw cancelled(`${where}: cancelled at step ${last?.current_steps ?? resumedFrom ?? 0}; its checkpoints stay in ${outputDir}, and a retry resumes from the newest`);
      if (!(await exists(path.join(outputDir, 'config.json')))) {
        throw toolOutputInvalid(`${where}: llamafactory-cli exited 0 but ${outputDir} has no config.json (no model was saved)`, run.details);
      }
    }

    const modelDir = await finalModel(outputDir, path.join(dir, 'model'));
    const tree = await putTree(store, modelDir);
    const logText = await fs.readFile(logFile, 'utf8').catch(() => '');
    const logs = logText.split('\n').map(parseLog).filter((v): v is TrainerLog => v !== undefined);
    const metrics = await store.putBytes(logText, TRAINER_LOG_MEDIA_TYPE);
    const loss = [...logs].reverse().find((l) => l.loss !== undefined)?.loss;
    return {
      outputs: {
        model: tree, modelDir, config,
        metrics: { ...metrics, counts: { rows: logs.length } },
        steps: logs.at(-1)?.current_steps ?? 0,
        ...(resumedFrom !== undefined ? { resumedFrom } : {}),
        ...(loss !== undefined ? { loss } : {}),
      },
      attempt,
      log: deps.logs.file(input.runId, input.stageId),
    };
  };
}

async function checkDatasetInfo(dataset: string, name: string, where: string): Promise<void> {
  const text = await fs.readFile(path.join(dataset, 'dataset_info.json'), 'utf8').catch(() => undefined);
  const info = text === undefined ? undefined : (JSON.parse(text) as Record<string, { file_name?: string }>);
  if (!info) throw invalidInput(`${where}: with.dataset: ${dataset} has no dataset_info.json; pass teacher/answer's dataset (or a folder with LLaMA-Factory's dataset_info.json)`);
  const entry = info[name];
  if (!entry?.file_name) throw invalidInput(`${where}: with.datasetName: ${dataset}/dataset_info.json has no entry ${name} (it has ${Object.keys(info).join(', ') || 'none'})`);
  if (!(await exists(path.join(dataset, entry.file_name)))) throw invalidInput(`${where}: dataset_info.json's ${name} names ${entry.file_name}, which is not in ${dataset}`);
}

/** The newest `checkpoint-N` of an output folder (Hugging Face Trainer's layout). */
async function latestCheckpoint(outputDir: string): Promise<number | undefined> {
  const names = await fs.readdir(outputDir).catch(() => [] as string[]);
  const steps = names.map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  return steps.length ? Math.max(...steps) : undefined;
}

/** The output folder without checkpoints and logs, hard-linked into `target`: the model a later stage loads. */
async function finalModel(outputDir: string, target: string): Promise<string> {
  await fs.rm(target, { recursive: true, force: true });
  await fs.mkdir(target, { recursive: true });
  const entries = await fs.readdir(outputDir, { withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && !/^(trainer_log\.jsonl|training_loss\.png|trainer_state\.json)$/.test(e.name)).map((e) => e.name);
  await mapBounded(files, 8, (name) => fs.link(path.join(outputDir, name), path.join(target, name)).catch(() => fs.copyFile(path.join(outputDir, name), path.join(target, name))));
  return target;
}

const exists = (p: string) => fs.stat(p).then(() => true, () => false);

function sftHint(exit: GroupExit, lines: string[], cli: string): string | undefined {
  const text = lines.join('\n');
  if (exit.exitCode === 127) return `${cli} was not found on this host: set with.cli to the llamafactory-cli of the environment that has LLaMA-Factory`;
  if (/CUDA out of memory|OutOfMemoryError/.test(text)) return 'the GPUs ran out of memory: lower perDeviceBatchSize (gradient accumulation makes up batchSize), cutoffLen or imageMaxPixels';
  if (/Some keys are not used by the HfArgumentParser/.test(text)) return 'LLaMA-Factory refused a key of the YAML: check with.extra';
  if (/torch 2\.9\.x with Conv3D/i.test(text)) return 'LLaMA-Factory refuses Qwen2.5-VL (a Conv3d model) on torch 2.9: install torch below 2.9, or 2.10 or later, in its environment';
  if (/doesn't support bf16/.test(text)) return 'this host cannot train in bf16: set bf16: false';
  return undefined;
}
