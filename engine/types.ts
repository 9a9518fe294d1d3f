/**
 * Shapes shared by the engine, the interpreter workflow, activities and the CLI.
 * Everything here is plain JSON so it can cross the Temporal boundary unchanged.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/**
 * How a kind is carried out: by an activity on a task queue, by the workflow waiting for
 * one person's approval, or by a review workflow holding a queue of items for people.
 */
export type StageHandler = 'activity' | 'approval' | 'review';

/** Retry policy of one stage after compilation. */
export interface CompiledRetry {
  /** Most attempts in total; 1 means no retry. @default 1 */
  attempts: number;
  /** Delay before the second attempt, doubled each time. @default 10_000 */
  backoffMs: number;
  /** Upper bound of the doubled delay. @default 600_000 */
  maxBackoffMs: number;
}

/** What a stage needs from the host that runs it, beyond a slot on its queue. */
export interface StageResources {
  /**
   * GPUs, each a device of its own, reserved from the worker's pool (`worker.ts --gpus N`)
   * for the attempt and seen by its commands as CUDA_VISIBLE_DEVICES. @default 0
   */
  gpus?: number;
}

/** One stage, ready for the interpreter: ids resolved, durations in ms, matrix expanded. */
export interface CompiledStage {
  /** Unique id. The YAML key, or `key[name=value,...]` for one expansion of a matrix stage. */
  id: string;
  /** The YAML key the stage came from (equal to `id` unless the stage has a matrix). */
  key: string;
  uses: string;
  kindVersion: string;
  handler: StageHandler;
  /**
   * Activity type the stage runs: its kind's `uses` name (the opening activity of a
   * review), empty for an approval. Runs compiled before kinds were keyed by `uses`
   * carry the old names, which workers still register (activities/kinds.ts).
   */
  activity: string;
  /** Compiled ids this stage waits for: explicit `needs` plus every stage its expressions reference. */
  needs: string[];
  /** Inputs as written, expressions unresolved (`${{ ... }}` strings stay strings). */
  with: JsonObject;
  /** Fields of `with` whose expressions are substituted as shell variables, never as text. */
  shellFields: string[];
  queue: string;
  timeoutMs: number;
  heartbeatMs: number;
  retry: CompiledRetry;
  cache: boolean;
  /** Set only when the stage asks for something, so pipelines that do not compile as before. */
  resources?: StageResources;
  /** Condition source (the inside of `${{ }}`); the stage is skipped when it is false. */
  if?: string;
  /** Values of this matrix expansion, referenced as `${{ matrix.NAME }}`. */
  matrix?: JsonObject;
}

export interface CompiledPipeline {
  /** Bumped when the interpreter's behaviour changes in a way old histories must not see. */
  formatVersion: 1;
  name: string;
  /** The file the pipeline came from, for messages only; the workflow never reads it. */
  source: string;
  /** sha256 of the pipeline file's bytes. */
  sourceDigest: string;
  /** Parameter values after `--set` overrides. */
  params: JsonObject;
  /** Stage ids in a topological order (declaration order breaks ties). */
  order: string[];
  stages: Record<string, CompiledStage>;
  /** Most stages running at once. @default 16 */
  maxParallel: number;
}

/** A reference to bytes in the artifact store; the only way bulk data moves between stages. */
export interface ArtifactRef {
  uri: string;
  sha256: string;
  bytes: number;
  mediaType?: string;
  /** Kind-specific counts (rows, images, ...). */
  counts?: Record<string, number>;
}

export type StageState = 'pending' | 'running' | 'succeeded' | 'cached' | 'failed' | 'waiting' | 'skipped';
export type RunState = 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

export interface Progress {
  done: number;
  total?: number;
  unit?: string;
  message?: string;
}
