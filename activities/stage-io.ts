import type { Json, JsonObject, Progress, StageResources } from '../engine/types.js';

/** What the interpreter hands to every stage activity. */
export interface StageActivityInput {
  runId: string;
  stageId: string;
  uses: string;
  kindVersion: string;
  /** Inputs with every expression resolved. */
  with: JsonObject;
  /** Values of expressions in shell fields, passed as environment variables (see core/shell). */
  shellEnv: Record<string, string>;
  /** When set, a successful result is written to the cache under this key. */
  cacheKey?: string;
  /** What the stage asked for (`resources:`); its worker reserves it before the attempt runs (see stage-attempt.ts). */
  resources?: StageResources;
}

export interface StageActivityResult {
  outputs: JsonObject;
  /** Temporal attempt number that succeeded (1 = first try). */
  attempt: number;
  /** Path of the stage log on the worker's host. */
  log?: string;
}

/** Details attached to a stage's failure, read back by the interpreter and `twinflow status`. */
export interface StageFailureDetails {
  attempt: number;
  exitCode?: number;
  logTail?: string[];
  log?: string;
}

/** What stage activities heartbeat; `twinflow status` reads it from the pending activity. */
export interface StageHeartbeat {
  progress?: Progress;
  [key: string]: Json | Progress | undefined;
}

export interface CacheLookupInput {
  uses: string;
  kindVersion: string;
  inputs: JsonObject;
  shellEnv: Record<string, string>;
}

export interface CacheLookupResult {
  key: string;
  hit?: { outputs: JsonObject; runId: string; stageId: string; createdAt: string };
  /** An entry exists but cannot be served (its outputs are gone or changed): why. */
  stale?: string;
}
