import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageCacheKey } from '../engine/cache-key.js';
import { getKind } from '../engine/kinds/registry.js';
import { filesUnder, sha256File } from './host-files.js';
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

/**
 * sha256 of a file's bytes; for a folder, of its listing (see {@link folderListing}).
 * 'missing' when there is nothing at the path.
 */
export async function fingerprint(target: string): Promise<string> {
  const st = await fs.stat(target).catch(() => undefined);
  if (!st) return 'missing';
  if (st.isFile()) return sha256File(target);
  return createHash('sha256').update(await folderListing(target)).digest('hex');
}

/**
 * Every file under a folder with its size, modification and change times in nanoseconds.
 * The change time is what makes this safe without reading the files: any write to a file
 * sets it to now, and unlike the modification time it cannot be set back (`touch -d`,
 * `cp -p` and rsync restore only mtime). A folder's key therefore changes whenever one of
 * its files may have changed; the stages that read it record the content of what they use
 * (twin/source hashes each image it lists), so a change that is only a touch costs one
 * re-read and leaves every later stage cached.
 */
export async function folderListing(target: string): Promise<string> {
  const lines: string[] = [];
  for await (const [rel, s] of filesUnder(target)) lines.push(`${rel}\t${s.size}\t${s.mtimeNs}\t${s.ctimeNs}`);
  return lines.sort().join('\n');
}
