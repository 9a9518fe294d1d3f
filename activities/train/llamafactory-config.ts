import type { z } from 'zod';
import type { sftInputs } from '../../engine/kinds/train.js';

export type SftSpec = z.output<typeof sftInputs>;

/** DeepSpeed configs as LLaMA-Factory's examples/deepspeed ships them: batch sizes and buckets left to "auto". */
export function deepspeedConfig(stage: 'zero2' | 'zero3'): Record<string, unknown> {
  const common = {
    train_batch_size: 'auto', train_micro_batch_size_per_gpu: 'auto', gradient_accumulation_steps: 'auto', gradient_clipping: 'auto',
    zero_allow_untested_optimizer: true, fp16: { enabled: 'auto', loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
    bf16: { enabled: 'auto' },
  };
  const zero = stage === 'zero3'
    ? { stage: 3, overlap_comm: false, contiguous_gradients: true, sub_group_size: 1e9, reduce_bucket_size: 'auto', stage3_prefetch_bucket_size: 'auto',
      stage3_param_persistence_threshold: 'auto', stage3_max_live_parameters: 1e9, stage3_max_reuse_distance: 1e9, stage3_gather_16bit_weights_on_model_save: true }
    : { stage: 2, allgather_partitions: true, allgather_bucket_size: 5e8, overlap_comm: false, reduce_scatter: true, reduce_bucket_size: 5e8, contiguous_gradients: true, round_robin_gradients: true };
  return { ...common, zero_optimization: zero };
}

export interface SftPlaces {
  model: string;
  datasetDir: string;
  outputDir: string;
  deepspeed?: string;
  resumeFrom?: string;
}

/**
 * The LLaMA-Factory training YAML for a stage: the paper's SFT baseline (Table 9) from the
 * stage's inputs, the dataset found through its dataset_info.json with `media_dir` at the
 * dataset (image paths resolve wherever the dataset landed), then `extra`. The tests check
 * every key against LLaMA-Factory's own argument dataclasses.
 */
export function sftConfig(spec: SftSpec, at: SftPlaces): Record<string, string | number | boolean> {
  const perStep = spec.perDeviceBatchSize * spec.gpus;
  // Resuming a full fine-tune without DeepSpeed, transformers 4.57's Trainer loads the checkpoint's weights
  // without Qwen2.5-VL's key mapping, finds none of them ("missing keys") and trains the base model again
  // (huggingface/transformers#43701): start from the checkpoint's own model files instead. With DeepSpeed
  // the engine loads its own checkpoint; a LoRA checkpoint holds only the adapter.
  const fromCheckpoint = at.resumeFrom !== undefined && !at.deepspeed && spec.finetuningType !== 'lora';
  return {
    model_name_or_path: fromCheckpoint ? at.resumeFrom! : at.model,
    trust_remote_code: true,
    image_max_pixels: spec.imageMaxPixels,
    stage: 'sft',
    do_train: true,
    finetuning_type: spec.finetuningType,
    freeze_vision_tower: spec.freezeVisionTower,
    freeze_multi_modal_projector: spec.freezeProjector,
    freeze_language_model: false,
    ...(at.deepspeed ? { deepspeed: at.deepspeed } : {}),
    dataset: spec.datasetName,
    dataset_dir: at.datasetDir,
    media_dir: at.datasetDir,
    template: spec.template,
    cutoff_len: spec.cutoffLen,
    overwrite_cache: true,
    preprocessing_num_workers: 16,
    output_dir: at.outputDir,
    overwrite_output_dir: false,
    logging_steps: spec.loggingSteps,
    save_steps: spec.saveSteps,
    plot_loss: true,
    report_to: 'none',
    per_device_train_batch_size: spec.perDeviceBatchSize,
    gradient_accumulation_steps: Math.max(1, Math.round(spec.batchSize / perStep)),
    learning_rate: spec.learningRate,
    num_train_epochs: spec.epochs,
    lr_scheduler_type: spec.scheduler,
    warmup_ratio: spec.warmupRatio,
    bf16: spec.bf16,
    ddp_timeout: 180_000_000,
    ...(at.resumeFrom ? { resume_from_checkpoint: at.resumeFrom } : {}),
    ...spec.extra,
  };
}

/** Why a batch size cannot be made of whole per-device batches, if it cannot. */
export function batchProblem(spec: SftSpec): string | undefined {
  const perStep = spec.perDeviceBatchSize * spec.gpus;
  if (spec.batchSize % perStep === 0) return undefined;
  return `batchSize ${spec.batchSize} is not a multiple of perDeviceBatchSize x gpus (${spec.perDeviceBatchSize} x ${spec.gpus} = ${perStep}); ` +
    `pick sizes that divide it (e.g. batchSize ${Math.ceil(spec.batchSize / perStep) * perStep})`;
}
