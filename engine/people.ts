import { evaluateCondition, resolveInputs } from './expressions.js';
import type { CompiledStage, JsonObject } from './types.js';

/**
 * Whether a stage will wait for people, judged before the run from params alone:
 * approval gates (unless their `if` is false), and reviews no policy decides. Answers
 * true when it depends on values only the run will know, since nobody should be told
 * "no one is needed" wrongly.
 */
export function waitsForPeople(stage: CompiledStage, params: JsonObject): boolean {
  if (stage.handler === 'activity') return false;
  if (stage.if !== undefined && !holds(stage.if, params)) return false;
  if (stage.handler === 'approval') return true;
  return reviewMode(stage, params) !== 'policy';
}

/** `people` or `policy` for a core/review stage, or undefined when its mode reads stage outputs. */
export function reviewMode(stage: CompiledStage, params: JsonObject): 'people' | 'policy' | undefined {
  const { mode, policy } = stage.with;
  if (mode === undefined) return policy === undefined ? 'people' : 'policy';
  try {
    const resolved = resolveInputs({ mode }, { params, stages: {} }, []).with.mode;
    return resolved === 'people' || resolved === 'policy' ? resolved : undefined;
  } catch {
    return undefined;
  }
}

function holds(condition: string, params: JsonObject): boolean {
  try {
    return evaluateCondition(condition, { params, stages: {} });
  } catch {
    return true;
  }
}
