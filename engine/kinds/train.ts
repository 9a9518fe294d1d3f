import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

const DAY_MS = 24 * 3_600_000;

/** A folder this host can read, or a folder artifact (`datasetTree`, a trained model) pulled onto the host that runs the stage. */
const folderInput = (what: string) => z.union([artifactRefSchema, z.string().min(1)]).describe(`${what}: a folder artifact (pulled onto the GPU host) or a folder on that host.`);

const pos = () => z.number().int().positive();

/** A folder input given as a host path (not an artifact): its listing joins the cache key, so an edited dataset is never served from the cache. */
export const hostPaths = (...values: unknown[]): string[] =>
  values.filter((v): v is string => typeof v === 'string' && !v.startsWith('artifact:') && !v.includes('${{'));

/** The reward and the sampler verl loads by path: editing either trains again. */
const GPU_FILES = ['twin_reward.py', 'twin_sampler.py'].map((f) => fileURLToPath(new URL(`../../gpu/${f}`, import.meta.url)));

export const grpoInputs = z.strictObject({
  dataset: folderInput('A twin/assemble dataset with the verl export (`exports: [verl]`), e.g. `${{ stages.assemble.outputs.datasetTree }}`'),
  trainFile: z.string().min(1).default('train.parquet').describe("The training parquet, relative to the dataset (`data.train_files`)."),
  valFile: z.string().min(1).default('eval.parquet').describe("The validation parquet, relative to the dataset (`data.val_files`)."),
  model: z.union([z.string().min(1), artifactRefSchema]).default('Qwen/Qwen2.5-VL-3B-Instruct')
    .describe('Base model: a Hugging Face id or folder on the GPU host, or a model folder artifact (`actor_rollout_ref.model.path`).'),
  nodes: pos().default(1).describe('`trainer.nnodes`.'),
  gpusPerNode: pos().default(4).describe('`trainer.n_gpus_per_node`; give the stage `resources: { gpus: N }` to reserve them.'),
  tensorParallel: pos().default(2).describe('Rollout tensor parallel size (`rollout.tensor_model_parallel_size`).'),
  batchSize: pos().default(480).describe('Prompts per step (`data.train_batch_size`).'),
  miniBatchSize: pos().optional().describe('PPO mini-batch (`actor.ppo_mini_batch_size`); default: batchSize (one update per step, as in the paper).'),
  microBatchPerGpu: pos().default(4).describe('Micro-batch per GPU for updates and log-prob passes (memory, not maths).'),
  groupSize: pos().default(5).describe('Responses per prompt (`rollout.n`): the GRPO group.'),
  learningRate: z.number().positive().default(1e-6).describe('`actor.optim.lr` (AdamW).'),
  weightDecay: z.number().nonnegative().default(0.01).describe('`actor.optim.weight_decay`.'),
  klCoef: z.number().nonnegative().default(0.01).describe('KL loss coefficient (`actor.kl_loss_coef`, with `use_kl_loss`).'),
  klType: z.enum(['low_var_kl', 'kl', 'abs', 'mse']).default('low_var_kl').describe('`actor.kl_loss_type`.'),
  entropyCoef: z.number().nonnegative().default(0).describe('`actor.entropy_coeff`.'),
  clipRatio: z.number().positive().default(0.2).describe('`actor.clip_ratio`.'),
  gradClip: z.number().positive().default(1.0).describe('`actor.grad_clip`.'),
  epochs: pos().default(1).describe('`trainer.total_epochs`.'),
  maxPromptLength: pos().default(2048).describe('`data.max_prompt_length` (longer prompts are an error, `data.truncation=error`).'),
  maxResponseLength: pos().default(2048).describe('`data.max_response_length`.'),
  temperature: z.number().nonnegative().default(1.0).describe('Rollout sampling temperature.'),
  topP: z.number().positive().max(1).default(1.0).describe('Rollout top-p.'),
  rollout: z.enum(['vllm', 'sglang']).default('vllm').describe('Rollout engine (`rollout.name`).'),
  gpuMemoryUtilization: z.number().positive().max(1).default(0.6).describe("The rollout engine's share of GPU memory."),
  freezeVisionTower: z.boolean().default(false).describe('`actor.freeze_vision_tower` (the paper trains it).'),
  balance: z.enum(['sampler', 'none']).default('sampler').describe('`sampler`: every batch holds as many yes as no labels (gpu/twin_sampler.py through `data.sampler`); `none`: verl shuffles.'),
  saveFreq: pos().default(40).describe('Checkpoint every N steps (`trainer.save_freq`); a crashed or lost stage resumes from the latest.'),
  testFreq: pos().default(20).describe('Validate every N steps (`trainer.test_freq`).'),
  checkpoints: z.string().min(1).optional().describe("Checkpoint folder (`trainer.default_local_dir`); default: the stage's folder. A folder every GPU host mounts lets a stage resume on another host."),
  project: z.string().min(1).default('TWIN').describe('`trainer.project_name`.'),
  experiment: z.string().min(1).optional().describe('`trainer.experiment_name`; default: RUN-STAGE.'),
  python: z.string().min(1).default('python3').describe('The interpreter of the environment that has verl on the GPU host.'),
  env: z.record(z.string(), z.string()).default({}).describe('Extra environment for verl (e.g. `VLLM_USE_V1: "1"`).'),
  overrides: z.array(z.string().regex(/^\+{0,2}[\w.]+=/, 'expected a Hydra override KEY=VALUE')).default([]).describe('More Hydra overrides, appended last (they win).'),
});

const metricValues = z.record(z.string(), z.number());

export const grpoKind = defineKind({
  uses: 'verl/grpo',
  // 1: GRPO with verl's main_ppo, Table 8 defaults, balanced batches, resume, merged model.
  version: '1',
  description:
    'Post-train a VLM on Twin with GRPO (verl `main_ppo`, `algorithm.adv_estimator=grpo`, Table 8 by default), the Twin reward ' +
    '(gpu/twin_reward.py) and balanced yes/no batches; resumes from the latest checkpoint after a crash or a lost worker, and ' +
    'ends by merging the actor into a Hugging Face model folder.',
  with: grpoInputs,
  outputs: z.strictObject({
    model: artifactRefSchema.describe('The merged Hugging Face model folder, as a folder artifact (for evaluation on any host).'),
    modelDir: z.string().describe('The same folder on the GPU host.'),
    checkpoint: z.string().describe('The last verl checkpoint (`global_step_N`).'),
    metrics: artifactRefSchema.describe("verl's file-logger JSONL, one line per step."),
    steps: z.number().int().nonnegative(),
    resumedFrom: z.number().int().nonnegative().optional().describe('The checkpoint step the last attempt started from.'),
    final: metricValues.describe("The last step's metrics (reward mean, KL, response length, ...)."),
  }),
  defaultQueue: 'gpu',
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 7 * DAY_MS,
  readsPaths: (w) => [...hostPaths(w.dataset, w.model), ...GPU_FILES],
});

export const TEACHER_INSTRUCTION =
  'Look closely at both images and explain which details match and which differ. ' +
  'Then give your final answer, yes or no, inside <answer></answer> tags.';

export const teacherInputs = z.strictObject({
  dataset: folderInput('A twin/assemble dataset with the sharegpt export (`exports: [sharegpt]`)'),
  file: z.string().min(1).default('train.sharegpt.json').describe('The sharegpt file in the dataset whose pairs the teacher answers.'),
  endpoint: z.string().url().describe('Base URL of an OpenAI-compatible API serving the teacher (requests go to ENDPOINT/chat/completions).'),
  model: z.string().min(1).describe('The teacher model name the endpoint serves.'),
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).default('OPENAI_API_KEY').describe('Environment variable on the worker that holds the API key (sent as Bearer, never logged).'),
  instruction: z.string().min(1).default(TEACHER_INSTRUCTION).describe('Appended to each question: asks for an explanation and the answer in tags.'),
  limit: z.number().int().positive().optional().describe('Ask only the first N pairs (a pilot); default: all.'),
  concurrency: z.number().int().min(1).max(256).default(8).describe('Requests in flight at once.'),
  maxTokens: z.number().int().min(1).max(32_768).default(1024).describe('New tokens per answer (greedy decoding).'),
  timeoutSeconds: z.number().min(1).max(3600).default(120).describe('Per-request timeout.'),
  retries: z.number().int().min(0).max(20).default(5).describe('Retries of a request after 429, 5xx or a timeout, with backoff.'),
});

export const teacherKind = defineKind({
  uses: 'teacher/answer',
  // 1: the paper's SFT data: a teacher's explained answers to Twin pairs, only the correct ones.
  version: '1',
  description:
    "Ask a teacher model (any OpenAI-compatible endpoint) to answer Twin training pairs with an explanation and <answer> tags, keep only " +
    "the answers whose tagged yes/no equals the label (the paper kept 136K), and write a sharegpt dataset (LLaMA-Factory's format, with its " +
    'images and dataset_info.json) with those answers as the assistant turns. Answers are kept as they arrive: a retry asks only the rest.',
  with: teacherInputs,
  outputs: z.strictObject({
    dataset: artifactRefSchema.describe('The sharegpt dataset folder (teacher.sharegpt.json, dataset_info.json, images) as a folder artifact.'),
    datasetDir: z.string().describe('The same folder on the host that ran the stage.'),
    counts: z.strictObject({
      pairs: z.number().int().nonnegative(),
      asked: z.number().int().nonnegative(),
      resumed: z.number().int().nonnegative(),
      kept: z.number().int().nonnegative().describe('Answered correctly, in tags: the SFT rows.'),
      wrong: z.number().int().nonnegative(),
      untagged: z.number().int().nonnegative().describe('No yes/no inside <answer> tags.'),
      requests: z.number().int().nonnegative(),
    }),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 3 * DAY_MS,
  readsPaths: (w) => hostPaths(w.dataset),
});

export const sftInputs = z.strictObject({
  dataset: folderInput("A sharegpt dataset with its dataset_info.json, e.g. `${{ stages.teacher.outputs.dataset }}`"),
  datasetName: z.string().min(1).default('twin_teacher').describe("Its entry in dataset_info.json (LLaMA-Factory's `dataset`)."),
  model: z.union([z.string().min(1), artifactRefSchema]).default('Qwen/Qwen2.5-VL-3B-Instruct')
    .describe('Base model: a Hugging Face id or folder on the GPU host, or a model folder artifact (`model_name_or_path`).'),
  template: z.string().min(1).default('qwen2_vl').describe("LLaMA-Factory's chat template (`qwen2_vl` covers Qwen2.5-VL)."),
  gpus: pos().default(4).describe('Processes on the host (torchrun through FORCE_TORCHRUN=1 when more than one); give the stage `resources: { gpus: N }`.'),
  batchSize: pos().default(256).describe('Global batch: perDeviceBatchSize x gradient accumulation x gpus.'),
  perDeviceBatchSize: pos().default(4).describe('`per_device_train_batch_size`; gradient accumulation makes up the rest of batchSize.'),
  learningRate: z.number().positive().default(1e-6).describe('`learning_rate`.'),
  epochs: z.number().positive().default(2).describe('`num_train_epochs`.'),
  scheduler: z.string().min(1).default('cosine').describe('`lr_scheduler_type`.'),
  warmupRatio: z.number().min(0).max(1).default(0.1).describe('`warmup_ratio`.'),
  cutoffLen: pos().default(2048).describe('`cutoff_len` (tokens).'),
  imageMaxPixels: pos().default(262_144).describe('`image_max_pixels` (512 x 512).'),
  finetuningType: z.enum(['full', 'lora', 'freeze']).default('full').describe('`finetuning_type` (the paper: full).'),
  freezeVisionTower: z.boolean().default(false).describe('`freeze_vision_tower` (LLaMA-Factory freezes it by default; the paper trains it).'),
  freezeProjector: z.boolean().default(false).describe('`freeze_multi_modal_projector`.'),
  deepspeed: z.enum(['zero3', 'zero2', 'none']).default('zero3').describe('DeepSpeed ZeRO stage (a config written beside the run; `none`: plain DDP).'),
  bf16: z.boolean().default(true).describe('`bf16`.'),
  saveSteps: pos().default(500).describe('Checkpoint every N steps (`save_steps`); a crashed or lost stage resumes from the latest.'),
  loggingSteps: pos().default(10).describe('`logging_steps`: how often the loss reaches the log and the heartbeats.'),
  cli: z.string().min(1).default('llamafactory-cli').describe('The llamafactory-cli of the environment that has LLaMA-Factory on the GPU host.'),
  env: z.record(z.string(), z.string()).default({}).describe('Extra environment for the run.'),
  extra: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}).describe('More keys for the LLaMA-Factory YAML, written last (they win).'),
});

export const sftKind = defineKind({
  uses: 'llamafactory/sft',
  // 1: the paper's SFT baseline, Table 9 by default.
  version: '1',
  description:
    'Fine-tune a VLM on a sharegpt dataset with LLaMA-Factory (`llamafactory-cli train`, Table 9 by default: full fine-tune, vision tower ' +
    'trained, cosine, warmup 0.1, 2 epochs, ZeRO-3, bf16); the loss in the heartbeats; resumes from the latest checkpoint; outputs the model folder.',
  with: sftInputs,
  outputs: z.strictObject({
    model: artifactRefSchema.describe('The fine-tuned model folder (no checkpoints), as a folder artifact.'),
    modelDir: z.string().describe('The same folder on the GPU host.'),
    config: z.string().describe('The LLaMA-Factory YAML the run used.'),
    metrics: artifactRefSchema.describe("LLaMA-Factory's trainer_log.jsonl."),
    steps: z.number().int().nonnegative(),
    resumedFrom: z.number().int().nonnegative().optional().describe('The checkpoint step the last attempt started from.'),
    loss: z.number().optional().describe('The last logged training loss.'),
  }),
  defaultQueue: 'gpu',
  cacheByDefault: true,
  handler: 'activity',
  defaultTimeoutMs: 7 * DAY_MS,
  readsPaths: (w) => hostPaths(w.dataset, w.model),
});

export const trainKinds = [grpoKind, teacherKind, sftKind] as const;
