import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { grpoInputs } from '../../engine/kinds/train.js';

export type GrpoSpec = z.output<typeof grpoInputs>;

/** The GPU-host Python twinflow ships: verl loads both by file path. */
export const GPU_DIR = fileURLToPath(new URL('../../gpu/', import.meta.url));
export const REWARD_FILE = path.join(GPU_DIR, 'twin_reward.py');
export const SAMPLER_FILE = path.join(GPU_DIR, 'twin_sampler.py');

/** Where one attempt's files are, on the GPU host. */
export interface GrpoPlaces {
  trainFile: string;
  valFile: string;
  model: string;
  checkpoints: string;
  experiment: string;
}

/**
 * verl's command line for a stage: `python -m verl.trainer.main_ppo` with the Hydra
 * overrides of the paper's run (Table 8; TWIN's training/run_grpo.sh), each from the
 * stage's inputs, then the stage's own `overrides`. `gpu/verl_config_check.py` composes
 * them with verl's own trainer config in the tests, so a key verl does not know fails there.
 */
export function grpoArgv(spec: GrpoSpec, at: GrpoPlaces): [string, ...string[]] {
  return [pythonPath(spec.python), '-m', 'verl.trainer.main_ppo', ...grpoOverrides(spec, at)];
}

export function grpoOverrides(spec: GrpoSpec, at: GrpoPlaces): string[] {
  const actor = 'actor_rollout_ref.actor';
  const rollout = 'actor_rollout_ref.rollout';
  const micro = spec.microBatchPerGpu;
  const o: Record<string, string | number | boolean> = {
    'algorithm.adv_estimator': 'grpo',
    'algorithm.use_kl_in_reward': false,
    'data.train_files': at.trainFile,
    'data.val_files': at.valFile,
    'data.image_key': 'images',
    'data.prompt_key': 'prompt',
    'data.train_batch_size': spec.batchSize,
    'data.max_prompt_length': spec.maxPromptLength,
    'data.max_response_length': spec.maxResponseLength,
    'data.truncation': 'error',
    'data.filter_overlong_prompts': true,
    'actor_rollout_ref.model.path': at.model,
    'actor_rollout_ref.model.use_remove_padding': true,
    'actor_rollout_ref.model.enable_gradient_checkpointing': true,
    [`${actor}.optim.lr`]: spec.learningRate,
    [`${actor}.optim.weight_decay`]: spec.weightDecay,
    [`${actor}.ppo_mini_batch_size`]: spec.miniBatchSize ?? spec.batchSize,
    [`${actor}.ppo_micro_batch_size_per_gpu`]: micro,
    [`${actor}.use_kl_loss`]: true,
    [`${actor}.kl_loss_coef`]: spec.klCoef,
    [`${actor}.kl_loss_type`]: spec.klType,
    [`${actor}.entropy_coeff`]: spec.entropyCoef,
    [`${actor}.clip_ratio`]: spec.clipRatio,
    [`${actor}.grad_clip`]: spec.gradClip,
    [`${actor}.freeze_vision_tower`]: spec.freezeVisionTower,
    [`${rollout}.name`]: spec.rollout,
    [`${rollout}.n`]: spec.groupSize,
    [`${rollout}.temperature`]: spec.temperature,
    [`${rollout}.top_p`]: spec.topP,
    [`${rollout}.tensor_model_parallel_size`]: spec.tensorParallel,
    [`${rollout}.gpu_memory_utilization`]: spec.gpuMemoryUtilization,
    [`${rollout}.log_prob_micro_batch_size_per_gpu`]: micro,
    'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu': micro,
    'reward_model.reward_manager': 'batch',
    'custom_reward_function.path': REWARD_FILE,
    'custom_reward_function.name': 'compute_score_batched',
    'trainer.logger': '["console","file"]',
    'trainer.project_name': spec.project,
    'trainer.experiment_name': at.experiment,
    'trainer.nnodes': spec.nodes,
    'trainer.n_gpus_per_node': spec.gpusPerNode,
    'trainer.total_epochs': spec.epochs,
    'trainer.save_freq': spec.saveFreq,
    'trainer.test_freq': spec.testFreq,
    'trainer.default_local_dir': at.checkpoints,
    'trainer.resume_mode': 'auto',
  };
  if (spec.balance === 'sampler') {
    o['data.sampler.class_path'] = SAMPLER_FILE;
    o['data.sampler.class_name'] = 'BalancedLabelSampler';
    // verl asserts this whenever data.sampler.class_path is set (its dataloader workers would each hold a copy of the sampler's state).
    o['data.dataloader_num_workers'] = 0;
  }
  return [...Object.entries(o).map(([k, v]) => `${k}=${hydraValue(v)}`), ...spec.overrides];
}

/** verl's model merger, from a checkpoint's actor shards to a Hugging Face folder. */
export function mergeArgv(python: string, actorDir: string, target: string): [string, ...string[]] {
  return [pythonPath(python), '-m', 'verl.model_merger', 'merge', '--backend', 'fsdp', '--local_dir', actorDir, '--target_dir', target];
}

/** verl runs in the stage folder: a path is taken from the worker's folder, as every other input is; a bare name is looked up on PATH. */
function pythonPath(python: string): string {
  return python.includes('/') ? path.resolve(python) : python;
}

/** A value as Hydra's override grammar reads it back: booleans lowercase, numbers as JS prints them, text quoted when it must be. */
function hydraValue(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  if (v.startsWith('[')) return v;
  return /^[\w./:@-]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
