/*
 * llamafactory/sft on the REAL LLaMA-Factory, on CPU, with gpu/toy_qwen2_5_vl.py's toy
 * Qwen2.5-VL (random weights, built offline). OPT-IN: skipped unless TWINFLOW_LLAMAFACTORY_CLI
 * names a llamafactory-cli; the toy is built with the python beside it.
 * - three SFT steps on a sharegpt dataset in teacher/answer's layout, through the YAML the kind
 *   writes (deepspeed none, bf16 false, gpus 1, max_steps in extra): the stage succeeds, the
 *   trainer log has every step with a finite loss, and the model folder it outputs loads with
 *   Qwen2_5_VLForConditionalGeneration.from_pretrained, vision tower and language model trained
 * - a run that dies after its first checkpoint fails retryably, and the retry resumes from
 *   checkpoint-1; that it continues from checkpoint-1's weights (the losses of the run never
 *   interrupted) is expected to fail until the kind works around a transformers bug (below)
 *
 * Install once (~3 min, ~3.9 GB of wheels, ~8 GB on disk; docs/llamafactory-cpu-check.md):
 *   python3 -m venv .venv/llamafactory-run &&
 *     .venv/llamafactory-run/bin/pip install --no-cache-dir -r test/python/requirements-llamafactory-run.txt
 * then run:
 *   TWINFLOW_LLAMAFACTORY_CLI=.venv/llamafactory-run/bin/llamafactory-cli npx vitest run test/unit/llamafactory-sft-real.test.ts
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { writeDatasetInfo } from '../../activities/export/sharegpt.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { readTree } from '../../activities/store/tree.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome } from '../support/activity-env.js';

const CLI = process.env.TWINFLOW_LLAMAFACTORY_CLI;
const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const env = activitiesInTempHome('sft-real');
let dataset: string;
let toy: string;
let cli: string;
let python: string;

/** The cli as a path: as given, or found on PATH; its venv's python sits beside it. */
async function resolveCli(cli: string): Promise<string> {
  if (cli.includes('/')) return path.resolve(cli);
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = path.join(dir, cli);
    if (await fs.access(candidate, fs.constants.X_OK).then(() => true, () => false)) return candidate;
  }
  throw new Error(`TWINFLOW_LLAMAFACTORY_CLI=${cli} is not on PATH`);
}

// Dies once, right after the trainer and its callbacks have written a whole checkpoint (LLaMA-Factory saves the
// processor into it from on_save): the crash the retry must survive. PYTHONPATH puts it in the run.
const CRASH_HOOK = `import os

marker = os.environ.get("TWINFLOW_TEST_CRASH_ONCE")
if marker:
    from transformers import trainer_callback

    on_save = trainer_callback.CallbackHandler.on_save

    def save_then_crash(self, args, state, control):
        control = on_save(self, args, state, control)
        if not os.path.exists(marker):
            open(marker, "w").close()
            print(f"twinflow test: crashing after checkpoint-{state.global_step}", flush=True)
            os._exit(1)
        return control

    trainer_callback.CallbackHandler.on_save = save_then_crash
`;

// Loads a model folder with the class a later stage uses, and says how far each part moved from the toy.
const LOAD_CHECK = `import json, sys
from transformers import Qwen2_5_VLForConditionalGeneration as M
trained, base = M.from_pretrained(sys.argv[1]), M.from_pretrained(sys.argv[2])
before = dict(base.named_parameters())
moved = {"visual": 0.0, "language_model": 0.0}
for name, p in trained.named_parameters():
    part = "visual" if ".visual." in f".{name}" else "language_model"
    moved[part] = max(moved[part], (p - before[name]).abs().max().item())
print(json.dumps({"class": type(trained).__name__, "parameters": sum(p.numel() for p in trained.parameters()), "moved": moved}))
`;

describe.skipIf(!CLI)('llamafactory/sft on the real LLaMA-Factory (CPU, toy Qwen2.5-VL)', () => {
  beforeAll(async () => {
    // Absolute: the kind runs it from the stage folder.
    cli = await resolveCli(CLI!);
    python = path.join(path.dirname(cli), 'python');
    toy = path.join(env.home.root, 'toy-qwen2.5-vl');
    await run(python, [path.join(ROOT, 'gpu/toy_qwen2_5_vl.py'), toy], { env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    // teacher/answer's layout: teacher.sharegpt.json, dataset_info.json entry twin_teacher, the images beside them.
    dataset = path.join(env.home.root, 'teacher');
    await fs.mkdir(path.join(dataset, 'images'), { recursive: true });
    const rows = [];
    for (let i = 0; i < 8; i++) {
      const images = [`images/${i}a.png`, `images/${i}b.png`];
      for (const [k, img] of images.entries()) {
        const background = { r: 30 * i, g: 100 * k, b: 50 };
        await sharp({ create: { width: 32, height: 32, channels: 3, background } }).png().toFile(path.join(dataset, img));
      }
      const label = i % 2 ? 'no' : 'yes';
      rows.push({
        messages: [
          { role: 'user', content: `<image><image>Are these the same object? Pair ${i}.` },
          { role: 'assistant', content: `The ${label === 'yes' ? 'scratches match' : 'colours differ'}. <answer>${label}</answer>` },
        ],
        images,
      });
    }
    await fs.writeFile(path.join(dataset, 'teacher.sharegpt.json'), JSON.stringify(rows));
    await writeDatasetInfo(path.join(dataset, 'dataset_info.json'), { twin_teacher: 'teacher.sharegpt.json' });
  }, 300_000);

  type Out = {
    model: ArtifactRef; modelDir: string; config: string; metrics: ArtifactRef; steps: number; resumedFrom?: number; loss?: number;
  };
  type LogLine = { current_steps: number; total_steps: number; loss?: number };
  // What a CPU run needs from the stage: no DeepSpeed, no bf16 (transformers refuses it without a GPU), one process.
  // No warmup, so step 1 moves the weights and a resume that dropped them would show in the losses.
  const onCpu = (stageId: string, extraEnv: Record<string, string> = {}) => ({
    dataset, model: toy, cli, deepspeed: 'none', bf16: false, gpus: 1,
    batchSize: 2, perDeviceBatchSize: 1, learningRate: 1e-3, warmupRatio: 0, loggingSteps: 1, saveSteps: 1, extra: { max_steps: 3 },
    env: {
      HF_HUB_OFFLINE: '1', HF_HOME: path.join(env.home.root, 'hf'), MPLCONFIGDIR: path.join(env.home.root, 'mpl', stageId), ...extraEnv,
    },
  });
  const sft = (stageId: string, w: Record<string, unknown>, attempt = 1) => {
    const input: StageActivityInput = {
      runId: 'r1', stageId, uses: 'llamafactory/sft', kindVersion: '1', with: w as JsonObject, shellEnv: {},
    };
    return new MockActivityEnvironment({ attempt }).run(env.acts['llamafactory/sft'], input) as Promise<StageActivityResult>;
  };
  const store = () => new ArtifactStore(env.home.artifactsDir);
  const trainerLog = async (out: Out): Promise<LogLine[]> =>
    (await store().read(out.metrics)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as LogLine);
  const losses = (lines: LogLine[]) => lines.filter((l) => l.loss !== undefined).map((l) => [l.current_steps, l.loss!] as const);
  let uninterrupted: Array<readonly [number, number]>;

  it('trains three steps from the YAML the kind writes and outputs a model folder Qwen2.5-VL loads', async () => {
    const out = (await sft('a', onCpu('a'))).outputs as unknown as Out;
    expect(parse(await fs.readFile(out.config, 'utf8'))).toMatchObject({
      model_name_or_path: toy, dataset: 'twin_teacher', media_dir: dataset, bf16: false, max_steps: 3,
    });
    uninterrupted = losses(await trainerLog(out));
    expect(uninterrupted.map(([step]) => step)).toEqual([1, 2, 3]);
    for (const [, loss] of uninterrupted) expect(Number.isFinite(loss) && loss > 0).toBe(true);
    expect(out.steps).toBe(3);
    expect(out.loss).toBe(uninterrupted[2]![1]);
    const files = (await readTree(store(), out.model)).files.map((f) => f.path);
    const expected = ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', 'train_results.json'];
    expect(files).toEqual(expect.arrayContaining(expected));
    expect(files.some((f) => f.startsWith('checkpoint-'))).toBe(false);
    const { stdout } = await run(python, ['-c', LOAD_CHECK, out.modelDir, toy], { env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    const loaded = JSON.parse(stdout) as { class: string; parameters: number; moved: { visual: number; language_model: number } };
    expect(loaded.class).toBe('Qwen2_5_VLForConditionalGeneration');
    // The paper trains the vision tower too (freezeVisionTower false by default).
    expect(loaded.moved.visual).toBeGreaterThan(0);
    expect(loaded.moved.language_model).toBeGreaterThan(0);
  }, 300_000);

  let resumed: Array<readonly [number, number]>;

  it('fails retryably when the run dies after its first checkpoint, and the retry resumes from it', async () => {
    const hook = path.join(env.home.root, 'crash-hook');
    await fs.mkdir(hook, { recursive: true });
    await fs.writeFile(path.join(hook, 'sitecustomize.py'), CRASH_HOOK);
    const w = onCpu('b', { PYTHONPATH: hook, TWINFLOW_TEST_CRASH_ONCE: path.join(env.home.root, 'crashed-once') });
    const crash = await failure(sft('b', w));
    expect(crash).toMatchObject({ type: 'StageFailed', nonRetryable: false });
    expect(crash.message).toContain('twinflow test: crashing after checkpoint-1');
    const out = (await sft('b', w, 2)).outputs as unknown as Out;
    expect(out.resumedFrom).toBe(1);
    const checkpoint = path.join(env.home.stageDir('r1', 'b'), 'output', 'checkpoint-1');
    expect(parse(await fs.readFile(out.config, 'utf8')).resume_from_checkpoint).toBe(checkpoint);
    expect(await fs.readFile(env.home.logFile('r1', 'b'), 'utf8')).toContain('Continuing training from global step 1');
    expect(out.steps).toBe(3);
    // Step 1 logged by the attempt that crashed, 2 and 3 by the retry.
    resumed = losses(await trainerLog(out));
    expect(resumed.map(([step]) => step)).toEqual([1, 2, 3]);
    expect(resumed[0]![1]).toBeCloseTo(uninterrupted[0]![1], 3);
  }, 300_000);

  // transformers 4.57's Trainer resumes a Qwen2.5-VL with load_state_dict and without the model's checkpoint key
  // mapping (a checkpoint holds visual.* and model.layers.*, the model model.visual.* and model.language_model.*),
  // so it would load no weight of the checkpoint and train the base model again (huggingface/transformers issue
  // 43701); llamafactory/sft starts a resumed full fine-tune from model_name_or_path: checkpoint-N instead.
  it('continues from the weights of that checkpoint: steps 2 and 3 log the losses of the uninterrupted run', () => {
    for (const i of [1, 2]) expect(resumed[i]![1]).toBeCloseTo(uninterrupted[i]![1], 3);
  });
});
