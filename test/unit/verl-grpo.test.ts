/*
 * verl/grpo, run through test/fakes/fake-verl-python (a FAKE of verl that checks the command
 * lines and writes verl's file-logger lines, checkpoints and merged folder; nothing trains):
 * - the command line carries Table 8 by default and the stage's settings, the reward and the
 *   balanced sampler by file path; progress (step/total, reward, KL, response length) is in
 *   the heartbeats; the merged model is a folder artifact
 * - a crash fails retryably with the log tail; the retry resumes from the newest checkpoint,
 *   never from scratch; a failed merge never trains again
 * - cancelling kills the process group and keeps the checkpoints
 * - verl's own trainer config accepts every override (gpu/verl_config_check.py, with verl
 *   installed without its dependencies by npm run setup)
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { putTree, readTree } from '../../activities/store/tree.js';
import { grpoOverrides, REWARD_FILE, SAMPLER_FILE } from '../../activities/train/verl-args.js';
import { grpoInputs, grpoKind } from '../../engine/kinds/train.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome } from '../support/activity-env.js';
import { isAlive } from '../support/processes.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-verl-python');
const env = activitiesInTempHome('verl-grpo');
let dataset: string;
let datasetTree: ArtifactRef;

beforeAll(async () => {
  dataset = path.join(env.home.root, 'twin');
  await fs.mkdir(dataset, { recursive: true });
  // The fake checks that the files exist; what is in them is verl's business (test/python reads the real export with verl's RLHFDataset).
  for (const f of ['train.parquet', 'eval.parquet', 'README.md']) await fs.writeFile(path.join(dataset, f), `${f}\n`);
  datasetTree = await putTree(new ArtifactStore(env.home.artifactsDir), dataset);
});

type Out = { model: ArtifactRef; modelDir: string; checkpoint: string; metrics: ArtifactRef; steps: number; resumedFrom?: number; final: Record<string, number> };
const input = (stageId: string, w: Record<string, unknown>): StageActivityInput => ({ runId: 'r1', stageId, uses: 'verl/grpo', kindVersion: '1', with: w as JsonObject, shellEnv: {} });
const knobs = (stageId: string, extra: Record<string, string> = {}) => ({
  FAKE_VERL_CALLS: path.join(env.home.root, `${stageId}.calls`), FAKE_VERL_ONCE_DIR: path.join(env.home.root, `${stageId}.once`), ...extra,
});
const train = (stageId: string, w: Record<string, unknown> = {}, attempt = 1, beats?: unknown[]) => {
  const activityEnv = new MockActivityEnvironment({ attempt });
  if (beats) activityEnv.on('heartbeat', (d: unknown) => beats.push(d));
  return activityEnv.run(env.acts['verl/grpo'], input(stageId, { dataset: datasetTree, python: FAKE, ...w })) as Promise<StageActivityResult>;
};
const calls = async (stageId: string): Promise<string[][]> =>
  (await fs.readFile(path.join(env.home.root, `${stageId}.calls`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as string[]);
const overridesOf = (argv: string[]) => Object.fromEntries(argv.slice(2).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));

describe('verl/grpo', () => {
  it('launches verl with Table 8 by default, the Twin reward and balanced batches, reports its steps, and outputs the merged model', async () => {
    const beats: Array<{ progress?: { done: number; total?: number; message?: string }; metrics?: Record<string, number> }> = [];
    const result = await train('a', { env: knobs('a', { FAKE_VERL_STEPS: '6', FAKE_VERL_STEP_S: '0.4' }), saveFreq: 2 }, 1, beats);
    const out = result.outputs as unknown as Out;
    const [trainer, merger] = await calls('a');
    expect(trainer!.slice(0, 2)).toEqual(['-m', 'verl.trainer.main_ppo']);
    const o = overridesOf(trainer!);
    expect(o).toMatchObject({
      'algorithm.adv_estimator': 'grpo', 'data.train_batch_size': '480', 'actor_rollout_ref.actor.ppo_mini_batch_size': '480',
      'actor_rollout_ref.rollout.n': '5', 'actor_rollout_ref.actor.optim.lr': '0.000001', 'actor_rollout_ref.actor.kl_loss_coef': '0.01',
      'actor_rollout_ref.actor.kl_loss_type': 'low_var_kl', 'actor_rollout_ref.actor.use_kl_loss': 'true', 'trainer.total_epochs': '1',
      'data.max_prompt_length': '2048', 'data.max_response_length': '2048', 'actor_rollout_ref.rollout.tensor_model_parallel_size': '2',
      'trainer.n_gpus_per_node': '4', 'trainer.save_freq': '2', 'trainer.test_freq': '20', 'actor_rollout_ref.rollout.temperature': '1',
      'actor_rollout_ref.actor.freeze_vision_tower': 'false', 'actor_rollout_ref.model.path': 'Qwen/Qwen2.5-VL-3B-Instruct',
      'reward_model.reward_manager': 'batch', 'custom_reward_function.path': REWARD_FILE, 'custom_reward_function.name': 'compute_score_batched',
      'data.sampler.class_path': SAMPLER_FILE, 'data.sampler.class_name': 'BalancedLabelSampler', 'data.dataloader_num_workers': '0', 'trainer.resume_mode': 'auto',
    });
    // The dataset travelled as an artifact and was pulled into the stage folder.
    expect(o['data.train_files']).toBe(path.join(env.home.stageDir('r1', 'a'), `dataset-${datasetTree.sha256.slice(0, 16)}`, 'train.parquet'));
    expect(merger).toEqual(['-m', 'verl.model_merger', 'merge', '--backend', 'fsdp', '--local_dir', path.join(out.checkpoint, 'actor'), '--target_dir', `${out.modelDir}.partial`]);
    expect(out.steps).toBe(6);
    expect(out.resumedFrom).toBeUndefined();
    expect(out.final['critic/score/mean']).toBeCloseTo(0.74);
    expect((await readTree(new ArtifactStore(env.home.artifactsDir), out.model)).files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(out.metrics.counts).toEqual({ steps: 6 });
    const progress = beats.map((b) => b.progress).filter((p) => p && p.done > 0);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ total: 6 });
    expect(progress.some((p) => /^reward 0\.\d{3}, kl \S+, response \d+ tokens$/.test(p!.message ?? ''))).toBe(true);
    expect(beats.some((b) => b.metrics?.['actor/kl_loss'] !== undefined)).toBe(true);
  });

  it('takes every setting from the pipeline, and more overrides last', () => {
    const spec = grpoInputs.parse({
      dataset: 'x', batchSize: 64, miniBatchSize: 32, groupSize: 8, learningRate: 2e-6, klCoef: 0, epochs: 2, nodes: 2, gpusPerNode: 8,
      tensorParallel: 1, rollout: 'sglang', balance: 'none', overrides: ['trainer.val_before_train=False'],
    });
    const o = grpoOverrides(spec, { trainFile: 't', valFile: 'v', model: 'm', checkpoints: 'c', experiment: 'e' });
    expect(o).toEqual(expect.arrayContaining([
      'data.train_batch_size=64', 'actor_rollout_ref.actor.ppo_mini_batch_size=32', 'actor_rollout_ref.rollout.n=8', 'actor_rollout_ref.actor.optim.lr=0.000002',
      'actor_rollout_ref.actor.kl_loss_coef=0', 'trainer.total_epochs=2', 'trainer.nnodes=2', 'trainer.n_gpus_per_node=8', 'actor_rollout_ref.rollout.name=sglang',
    ]));
    expect(o.some((x) => x.startsWith('data.sampler.'))).toBe(false);
    expect(o.at(-1)).toBe('trainer.val_before_train=False');
  });

  it('fails retryably with the log tail when verl crashes, and the retry resumes from the newest checkpoint', async () => {
    const w = { dataset, env: knobs('b', { FAKE_VERL_STEPS: '6', FAKE_VERL_CRASH_AT: '5' }), saveFreq: 2 };
    const err = await failure(train('b', w));
    expect(err.type).toBe('StageFailed');
    expect(err.nonRetryable).toBeFalsy();
    expect(err.message).toMatch(/^stage b \(verl\/grpo\): .*fake-verl-python -m verl.trainer.main_ppo exited with code 1; last \d+ lines of output:\n[^]*RuntimeError: fake crash at step 5/);
    const out = (await train('b', w, 2)).outputs as unknown as Out;
    expect(out.resumedFrom).toBe(4);
    expect(out.steps).toBe(6);
    const steps = (await fs.readFile(path.join(env.home.stageDir('r1', 'b'), 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]); // step 5 of the crashed attempt was never logged: each step once
    expect(await fs.readFile(env.home.logFile('r1', 'b'), 'utf8')).toMatch(/Load from checkpoint folder: .*global_step_4/);
  });

  it('merges again after a failed merge without training again', async () => {
    const w = { dataset, env: knobs('c', { FAKE_VERL_STEPS: '3', FAKE_VERL_MERGE_FAIL: '1' }) };
    expect((await failure(train('c', w))).message).toMatch(/verl.model_merger merge exited with code 1;[^]*fake merge failure/);
    const out = (await train('c', w, 2)).outputs as unknown as Out;
    expect(out.steps).toBe(3);
    expect((await calls('c')).map((a) => a[1])).toEqual(['verl.trainer.main_ppo', 'verl.model_merger', 'verl.model_merger']);
  });

  it("kills verl's process group when the stage is cancelled, and keeps the checkpoints for a retry", async () => {
    const pidFile = path.join(env.home.root, 'verl.pid');
    const activityEnv = new MockActivityEnvironment({ attempt: 1 });
    const running = activityEnv.run(env.acts['verl/grpo'], input('d', { dataset, python: FAKE, saveFreq: 1, env: knobs('d', { FAKE_VERL_HANG_AT: '3', FAKE_VERL_PID_FILE: pidFile }) }));
    let pid = 0;
    while (!pid || !(await fs.stat(path.join(env.home.stageDir('r1', 'd'), 'checkpoints', 'global_step_2')).then(() => true, () => false))) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    activityEnv.cancel();
    const err = await failure(running);
    expect(err.message).toMatch(/cancelled at step 2; its checkpoints stay in .*checkpoints, and a retry resumes from the newest/);
    await expect.poll(() => isAlive(pid), { timeout: 10_000 }).toBe(false);
  });

  it('refuses a dataset without the verl export, saying how to make one', async () => {
    const empty = path.join(env.home.root, 'no-verl');
    await fs.mkdir(empty, { recursive: true });
    const err = await failure(train('e', { dataset: empty }));
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(err.message).toMatch(/with.trainFile: train.parquet is not in the dataset .*no-verl; build it with twin\/assemble `exports: \[verl\]`/);
  });
});

describe("verl's own trainer config", () => {
  const python = path.resolve('.venv/bin/python');
  const check = promisify(execFile);
  it('accepts every override verl/grpo passes, and refuses a key it does not know', async () => {
    const spec = grpoInputs.parse({ dataset: 'x' });
    const overrides = grpoOverrides(spec, { trainFile: '/d/train.parquet', valFile: '/d/eval.parquet', model: 'Qwen/Qwen2.5-VL-3B-Instruct', checkpoints: '/c', experiment: 'e' });
    const { stdout } = await check(python, ['gpu/verl_config_check.py', ...overrides]);
    const composed = JSON.parse(stdout) as Record<string, unknown>;
    expect(composed['algorithm.adv_estimator']).toBe('grpo');
    expect(composed['data.train_batch_size']).toBe(480);
    expect(composed['actor_rollout_ref.actor.optim.lr']).toBe(1e-6);
    expect(composed['data.sampler.class_name']).toBe('BalancedLabelSampler');
    const refused = await failure(check(python, ['gpu/verl_config_check.py', ...overrides, 'data.balance_binary_labels=True']));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('data.balance_binary_labels');
  });
});

describe('the cache key of a training stage', () => {
  it('changes when its dataset folder (a host path) changes, not for an artifact, and reads the reward and sampler files', async () => {
    const { computeStageKey } = await import('../../activities/cache-keys.js');
    const { hostPaths } = await import('../../engine/kinds/train.js');
    const key = (w: Record<string, unknown>) => computeStageKey({ uses: 'verl/grpo', kindVersion: '1', inputs: w as JsonObject, shellEnv: {} });
    const before = await key({ dataset });
    await fs.appendFile(path.join(dataset, 'train.parquet'), 'more rows\n');
    expect(await key({ dataset })).not.toBe(before);
    expect(await key({ dataset: datasetTree as unknown as JsonObject })).toBe(await key({ dataset: datasetTree as unknown as JsonObject }));
    expect(hostPaths(datasetTree.uri, datasetTree, '/data/twin')).toEqual(['/data/twin']);
    // The reward and sampler verl loads by path are read (fingerprinted) too.
    expect(grpoKind.readsPaths!({ dataset })).toEqual([dataset, REWARD_FILE, SAMPLER_FILE]);
  });
});
