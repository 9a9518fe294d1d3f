import { z } from 'zod';

/**
 * A reference to an artifact in the content-addressed store (see `ArtifactRef` in
 * engine/types.ts): what data stages take as inputs and hand on as outputs.
 */
export const artifactRefSchema = z.strictObject({
  uri: z.string().regex(/^artifact:sha256:[0-9a-f]{64}$/, 'expected an artifact reference (artifact:sha256:...)').describe('Store URI, `artifact:sha256:<digest>`.'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits').describe('Digest of the bytes.'),
  bytes: z.number().int().nonnegative().describe('Size in bytes.'),
  mediaType: z.string().optional().describe('What the bytes are, e.g. application/x-twinflow-instances+jsonl.'),
  counts: z.record(z.string(), z.number()).optional().describe('Kind-specific counts (rows, images, ...).'),
});
