import { RUN_STATE_BUDGET, utf8Bytes } from '../engine/limits.js';
import type { CompiledPipeline, JsonObject } from '../engine/types.js';
import type { StageStatus } from './messages.js';

/** What a finished stage's record grows by besides its outputs (times, attempts, events), about. */
const STAGE_RECORD_BYTES = 300;

/**
 * The bytes a run's continue-as-new would carry (its pipeline, every stage's record and
 * outputs), kept under RUN_STATE_BUDGET one stage's outputs at a time: a run whose state
 * passed Temporal's 2 MB payload limit could never continue and would stall.
 */
export class RunBudget {
  private used: number;

  constructor(pipeline: CompiledPipeline, stages: Record<string, StageStatus>) {
    this.used = utf8Bytes(JSON.stringify(pipeline)) + utf8Bytes(JSON.stringify(stages));
  }

  /** Takes a stage's outputs into the run's state, or says why they do not fit. */
  admit(outputs: JsonObject): string | undefined {
    const bytes = utf8Bytes(JSON.stringify(outputs)) + STAGE_RECORD_BYTES;
    if (this.used + bytes <= RUN_STATE_BUDGET) {
      this.used += bytes;
      return undefined;
    }
    return `this stage's outputs are ${bytes} bytes, which would bring the run's state to ${this.used + bytes} bytes; ` +
      `a run's pipeline, stage records and outputs must stay under ${RUN_STATE_BUDGET} (Temporal carries them in one 2 MB payload when the run continues as new). ` +
      'Write bulk data to files or artifacts and output their paths or references, then retry the stage';
  }
}
