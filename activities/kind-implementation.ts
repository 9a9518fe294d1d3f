import type { z } from 'zod';
import type { StageKind } from '../engine/kinds/kind.js';
import type { ActivityKind } from '../engine/kinds/registry.js';
import type { StageActivityInput } from './stage-io.js';

/** What a kind's implementation returns: outputs of the kind's declared shape, checked again when the stage ends. */
export interface StageOutcome<O> {
  outputs: O;
  /** Temporal attempt number that succeeded (1 = first try). */
  attempt: number;
  /** Path of the stage log on the worker's host. */
  log?: string;
}

/** The code behind a kind: resolved inputs in (validated with `parseInputs(kind.with, input)`), typed outputs out. */
export type Implementation<K extends StageKind> = (input: StageActivityInput) => Promise<StageOutcome<z.input<K['outputs']>>>;

/** One implementation per activity kind, keyed by `uses`: a kind without one is a type error. */
export type Implementations = { [K in ActivityKind as K['uses']]: Implementation<K> };
