import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../../activities/artifact-store.js';

/** What fgvqa/build's store-named query images are, as the tests that check them need it. */

export const sha256Of = async (file: string) => createHash('sha256').update(await fs.readFile(file)).digest('hex');

/** Digests of every file under `dir` with its path, to tell which dataset file a store path copies. */
export async function digestsUnder(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, rel);
    if ((await fs.lstat(file)).isFile()) out.set(await sha256Of(file), file);
  }
  return out;
}

/** The digest an artifact URI names; throws for anything else, so a host path in a query fails the test. */
export function storedDigest(_store: ArtifactStore, image: string): string {
  const m = /^artifact:sha256:([0-9a-f]{64})$/.exec(image);
  if (!m) throw new Error(`${image} is not an artifact URI`);
  return m[1]!;
}
