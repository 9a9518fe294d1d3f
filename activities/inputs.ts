import type { z } from 'zod';
import type { StageActivityInput } from './stage-io.js';
import { invalidInput } from './failures.js';

/**
 * Validates resolved inputs against a kind's schema. A mismatch fails the stage without
 * retries: running it again with the same inputs cannot help.
 */
export function parseInputs<S extends z.ZodType>(schema: S, input: StageActivityInput): z.infer<S> {
  const parsed = schema.safeParse(input.with);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .map((issue) => `with.${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  throw invalidInput(`stage ${input.stageId} (${input.uses}) got invalid inputs after resolving expressions: ${problems}`);
}
