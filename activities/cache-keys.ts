import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { stageCacheKey } from '../engine/cache-key.js';
import { getKind } from '../engine/kinds/registry.js';
import type { JsonObject } from '../engine/types.js';

/**
 * The cache key of a stage as workers and `plan` compute it: the engine's key over kind,
 * version and inputs, plus fingerprints of the host files and folders the kind reads.
 */
export async function computeStageKey(input: { uses: string; kindVersion: string; inputs: JsonObject; shellEnv: Record<string, string> }): Promise<string> {
  const reads = getKind(input.uses)?.readsPaths?.(input.inputs) ?? [];
  const files: Record<string, string> = {};
  for (const p of reads) files[p] = await fingerprint(path.resolve(p));
  return stageCacheKey({ ...input, files });
}

/** sha256 of a file's bytes; for a folder, of its listing with sizes and modification times. */
export async function fingerprint(target: string): Promise<string> {
  const st = await fs.stat(target).catch(() => undefined);
  if (!st) return 'missing';
  const hash = createHash('sha256');
  if (st.isFile()) {
    await pipeline(createReadStream(target), hash);
    return hash.digest('hex');
  }
  const entries = await fs.readdir(target, { recursive: true, withFileTypes: true });
  const lines: string[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    const s = await fs.stat(full);
    lines.push(`${path.relative(target, full)}\t${s.size}\t${Math.trunc(s.mtimeMs)}`);
  }
  return hash.update(lines.sort().join('\n')).digest('hex');
}
