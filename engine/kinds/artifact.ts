import { z } from 'zod';

/** An artifact reference as stages pass it: `${{ stages.x.outputs.instances }}`. */
export const artifactRefSchema = z.strictObject({
  uri: z.string().regex(/^artifact:sha256:[0-9a-f]{64}$/, 'expected an artifact reference (artifact:sha256:...)'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  mediaType: z.string().optional(),
  counts: z.record(z.string(), z.number()).optional(),
});
