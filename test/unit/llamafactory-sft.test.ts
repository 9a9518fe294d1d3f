/*
 * llamafactory/sft, run through test/fakes/fake-llamafactory-cli (a FAKE of LLaMA-Factory: it
 * checks the YAML's keys, the dataset registration and every row's images, and writes the
 * trainer log, checkpoints and model files in LLaMA-Factory's layout; nothing trains):
 * - the YAML is Table 9 by default, the dataset found through dataset_info.json with media_dir
 *   at the dataset, torchrun for several GPUs, the loss in the heartbeats, the model folder out
 * - a crash fails retryably with the log tail; the retry resumes from the newest checkpoint
 * - cancelling kills the process group; bad batch sizes and datasets are refused up front
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { parse, stringify } from 'yaml';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sftConfig } from '../../activities/train/llamafactory-config.js';
import { sftInputs } from '../../engine/kinds/train.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { readTree } from '../../activities/store/tree.js';
import { writeDatasetInfo } from '../../activities/export/sharegpt.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome } from '../support/activity-env.js';
import { isAlive } from '../support/processes.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-llamafactory-cli');
const env = activitiesInTempHome('sft');
let dataset: string;

beforeAll(async () => {
  dataset = path.join(env.home.root, 'teacher');
  await fs.mkdir(path.join(dataset, 'images'), { recursive: true });
  const rows = [];
  for (let i = 0; i < 40; i++) {
    const imgs = [`images/${i}a.png`, `images/${i}b.png`];
    for (const img of imgs) await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: i, g: 0, b: 0 } } }).png().toFile(path.join(dataset, img));
    rows.push({ messages: [{ role: 'user', content: `<image><image>Pair ${i}?` }, { role: 'assistant', content: `Same scratch. <answer>${i % 2 ? 'no' : 'yes'}</answer>` }], images: imgs });
  }
  await fs.writeFile(path.join(dataset, 'teacher.sharegpt.json'), JSON.stringify(rows));
  await writeDatasetInfo(path.join(dataset, 'dataset_info.json'), { twin_teacher: 'teacher.sharegpt.json' });
});

type Out = { model: ArtifactRef; modelDir: string; config: string; metrics: ArtifactRef; steps: number; resumedFrom?: number; loss?: number };
const input = (stageId: string, w: Record<string, unknown>): StageActivityInput => ({ runId: 'r1', stageId, uses: 'llamafactory/sft', kindVersion: '1', with: w as JsonObject, shellEnv: {} });
const small = { batchSize: 8, perDeviceBatchSize: 1, gpus: 2, loggingSteps: 1, saveSteps: 3 };
const knobs = (stageId: string, extra: Record<string, string> = {}) => ({ FAKE_LF_CALLS: path.join(env.home.root, `${stageId}.calls`), FAKE_LF_ONCE_DIR: path.join(env.home.root, `${stageId}.once`), ...extra });
const sft = (stageId: string, w: Record<string, unknown> = {}, attempt = 1, beats?: unknown[]) => {
  const activityEnv = new MockActivityEnvironment({ attempt });
  if (beats) activityEnv.on('heartbeat', (d: unknown) => beats.push(d));
  return activityEnv.run(env.acts['llamafactory/sft'], input(stageId, { dataset, cli: FAKE, ...w })) as Promise<StageActivityResult>;
};
type Call = { args: string[]; cfg: Record<string, unknown>; env: Record<string, string | undefined> };
const calls = async (stageId: string): Promise<Call[]> =>
  (await fs.readFile(path.join(env.home.root, `${stageId}.calls`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Call);

describe('llamafactory/sft', () => {
  it('writes Table 9 by default, finds the dataset wherever it is, reports the loss and outputs the model folder', async () => {
    const beats: Array<{ progress?: { done: number; total?: number; message?: string } }> = [];
    const out = (await sft('a', { env: knobs('a', { FAKE_LF_STEP_S: '0.3' }), ...small }, 1, beats)).outputs as unknown as Out;
    const [call] = await calls('a');
    expect(call!.args).toEqual(['train', path.join(env.home.stageDir('r1', 'a'), 'train.yaml')]);
    expect(call!.cfg).toMatchObject({
      model_name_or_path: 'Qwen/Qwen2.5-VL-3B-Instruct', stage: 'sft', do_train: true, finetuning_type: 'full', freeze_vision_tower: false,
      template: 'qwen2_vl', dataset: 'twin_teacher', dataset_dir: dataset, media_dir: dataset, learning_rate: 1e-6, num_train_epochs: 2,
      lr_scheduler_type: 'cosine', warmup_ratio: 0.1, bf16: true, cutoff_len: 2048, image_max_pixels: 262144,
      per_device_train_batch_size: 1, gradient_accumulation_steps: 4,
    });
    expect(call!.cfg.resume_from_checkpoint).toBeUndefined();
    const ds = JSON.parse(await fs.readFile(call!.cfg.deepspeed as string, 'utf8')) as { zero_optimization: { stage: number } };
    expect(ds.zero_optimization.stage).toBe(3);
    expect(call!.env).toEqual({ FORCE_TORCHRUN: '1', NPROC_PER_NODE: '2' });
    expect(out.steps).toBe(10); // 40 rows / (1 x 4 x 2) per step, 2 epochs
    expect(out.loss).toBeCloseTo(2 / 11);
    expect((await readTree(new ArtifactStore(env.home.artifactsDir), out.model)).files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'tokenizer_config.json', 'train_results.json']);
    expect(beats.some((b) => b.progress?.total === 10 && /^loss \d\.\d{4}, epoch \d\.\d{2}$/.test(b.progress.message ?? ''))).toBe(true);
  });

  it('takes the defaults for the paper: batch 256 from 4 GPUs x 4 per device x 16 steps of accumulation', async () => {
    await sft('b', { env: knobs('b'), extra: { max_samples: 1000 } });
    const [call] = await calls('b');
    expect(call!.cfg).toMatchObject({ per_device_train_batch_size: 4, gradient_accumulation_steps: 16, max_samples: 1000 });
    expect(call!.env).toEqual({ FORCE_TORCHRUN: '1', NPROC_PER_NODE: '4' });
  });

  it('fails retryably with the log tail on a crash, and the retry resumes from the newest checkpoint', async () => {
    const w = { env: knobs('c', { FAKE_LF_CRASH_AT: '8' }), ...small };
    const err = await failure(sft('c', w));
    expect(err.type).toBe('StageFailed');
    expect(err.message).toMatch(/fake-llamafactory-cli train exited with code 1; last \d+ lines of output:\n[^]*fake crash at step 8/);
    const out = (await sft('c', w, 2)).outputs as unknown as Out;
    expect(out.resumedFrom).toBe(6);
    expect(out.steps).toBe(10);
    const [, retry] = await calls('c');
    expect(retry!.cfg.resume_from_checkpoint).toBe(path.join(env.home.stageDir('r1', 'c'), 'output', 'checkpoint-6'));
  });

  it('kills the process group when cancelled', async () => {
    const pidFile = path.join(env.home.root, 'lf.pid');
    const activityEnv = new MockActivityEnvironment({ attempt: 1 });
    const running = activityEnv.run(env.acts['llamafactory/sft'], input('d', { dataset, cli: FAKE, ...small, env: knobs('d', { FAKE_LF_HANG_AT: '2', FAKE_LF_PID_FILE: pidFile }) }));
    let pid = 0;
    while (!pid) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    activityEnv.cancel();
    expect((await failure(running)).message).toMatch(/cancelled at step \d+; its checkpoints stay in .*output, and a retry resumes from the newest/);
    await expect.poll(() => isAlive(pid), { timeout: 10_000 }).toBe(false);
  });

  it('launches DeepSpeed under torchrun even on one GPU, and resumes a full fine-tune without DeepSpeed from the checkpoint\'s own weights', async () => {
    await sft('h', { env: knobs('h'), gpus: 1, perDeviceBatchSize: 8, batchSize: 8 });
    expect((await calls('h'))[0]!.env).toEqual({ FORCE_TORCHRUN: '1', NPROC_PER_NODE: '1' });
    const spec = sftInputs.parse({ dataset: 'd', deepspeed: 'none' });
    const at = { model: 'base', datasetDir: '/d', outputDir: '/o', resumeFrom: '/o/checkpoint-6' };
    // transformers 4.57 loads none of a Qwen2.5-VL checkpoint's weights on resume (huggingface/transformers#43701).
    expect(sftConfig(spec, at)).toMatchObject({ model_name_or_path: '/o/checkpoint-6', resume_from_checkpoint: '/o/checkpoint-6' });
    expect(sftConfig(spec, { ...at, deepspeed: '/ds.json' }).model_name_or_path).toBe('base');
    expect(sftConfig(sftInputs.parse({ dataset: 'd', finetuningType: 'lora' }), at).model_name_or_path).toBe('base');
    expect(sftConfig(spec, { ...at, resumeFrom: undefined }).model_name_or_path).toBe('base');
  });

  it('refuses a batch size that per-device batches cannot make, and a dataset without its registration', async () => {
    const odd = await failure(sft('e', { batchSize: 250 }));
    expect(odd).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(odd.message).toMatch(/batchSize 250 is not a multiple of perDeviceBatchSize x gpus \(4 x 4 = 16\); .*batchSize 256/);
    const bare = path.join(env.home.root, 'bare');
    await fs.mkdir(bare, { recursive: true });
    expect((await failure(sft('f', { dataset: bare }))).message).toMatch(/has no dataset_info.json; pass teacher\/answer's dataset/);
    expect((await failure(sft('g', { datasetName: 'other' }))).message).toMatch(/has no entry other \(it has twin_teacher\)/);
  });

  it('writes YAML that LLaMA-Factory reads back as the same values', async () => {
    const text = await fs.readFile(path.join(env.home.stageDir('r1', 'a'), 'train.yaml'), 'utf8');
    expect(parse(text)).toMatchObject({ learning_rate: 1e-6, warmup_ratio: 0.1, freeze_vision_tower: false });
  });
});

describe("LLaMA-Factory's own argument dataclasses", () => {
  // Their source, installed by npm run setup into .venv/llamafactory, read by gpu/llamafactory_args_check.py.
  const check = (file: string) => promisify(execFile)(path.resolve('.venv/bin/python'), ['gpu/llamafactory_args_check.py', file], {
    env: { ...process.env, PYTHONPATH: path.resolve('.venv/llamafactory') },
  });
  it('know every key llamafactory/sft writes, resuming or not, and refuse one they do not', async () => {
    const spec = sftInputs.parse({ dataset: 'd' });
    const file = path.join(env.home.root, 'check.yaml');
    const yaml = sftConfig(spec, { model: 'm', datasetDir: '/d', outputDir: '/o', deepspeed: '/ds.json', resumeFrom: '/o/checkpoint-500' });
    await fs.writeFile(file, stringify(yaml));
    const { stdout } = await check(file);
    expect((JSON.parse(stdout) as { checked: string[] }).checked).toEqual(Object.keys(yaml));
    await fs.writeFile(file, stringify({ ...yaml, freeze_vison_tower: true }));
    const refused = await failure(check(file));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/freeze_vison_tower is not an argument of LLaMA-Factory's train parser \(did you mean freeze_vision_tower/);
  });
});
