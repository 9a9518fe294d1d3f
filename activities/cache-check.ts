import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isArtifactRef } from '../engine/cache-key.js';
import type { Json, JsonObject } from '../engine/types.js';
import type { ArtifactStore } from './artifact-store.js';
import type { CacheEntry, StageCache } from './cache.js';
import { filesUnder } from './host-files.js';

/**
 * Whether a cache entry can still be served. An entry is only as good as what its outputs
 * point at: artifacts must still be in the store, and host paths (a dataset folder, a
 * report file) must still be there with the contents the stage left. Both are recorded
 * when the entry is written and checked before a hit is served; a stale entry is a miss,
 * so the stage runs again and writes a fresh one.
 */

/** Folders with more files than this are checked for existence only. */
const MAX_LISTED_FILES = 200_000;

/** Host paths named by a stage's outputs, each with a fingerprint of what was there. */
export type HostPathPrints = Record<string, string>;

/**
 * Every absolute path among the outputs' strings that exists now, fingerprinted. Folders
 * are listed file by file only where `listed` says so (under TWINFLOW_HOME, or a folder
 * output the kind writes): a shell stage that prints `/` must not walk the disk.
 */
export async function recordHostPaths(outputs: JsonObject, listed: (folder: string) => boolean): Promise<HostPathPrints> {
  const prints: HostPathPrints = {};
  for (const p of new Set(pathsIn(outputs))) {
    const print = await hostPrint(p, listed(p));
    if (print !== 'missing') prints[p] = print;
  }
  return prints;
}

/** This host and its TWINFLOW_HOME, as cache entries record who wrote them. */
export function hostId(home: { root: string }): string {
  return `${os.hostname()}:${home.root}`;
}

/**
 * Why an entry cannot be served, or undefined when it can. Artifacts are checked in the
 * store, which every host shares; host paths only on the host that wrote them (`here`),
 * since another host cannot see them (its stages read the artifacts the kind publishes).
 */
export async function staleReason(
  entry: { outputs: JsonObject; hostPaths?: HostPathPrints; host?: string }, store: ArtifactStore, here?: string,
): Promise<string | undefined> {
  for (const ref of refsIn(entry.outputs)) {
    if (!(await store.has(ref))) return `its output ${ref.uri} is no longer in the artifact store`;
  }
  if (entry.host && here && entry.host !== here) return undefined;
  for (const [p, print] of Object.entries(entry.hostPaths ?? {})) {
    const now = await hostPrint(p, print.startsWith('folder '));
    if (now === 'missing') return `its output ${p} no longer exists`;
    if (now !== print) return `its output ${p} changed after the stage wrote it`;
  }
  return undefined;
}

function* walk(value: Json): Generator<Json> {
  yield value;
  if (Array.isArray(value)) for (const v of value) yield* walk(v);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) yield* walk(v);
}

function* refsIn(outputs: JsonObject): Generator<{ uri: string; sha256: string }> {
  for (const v of walk(outputs)) if (isArtifactRef(v)) yield v;
}

function* pathsIn(outputs: JsonObject): Generator<string> {
  for (const v of walk(outputs)) if (typeof v === 'string' && v.length < 4096 && path.isAbsolute(v) && !v.includes('\n')) yield path.normalize(v);
}

/**
 * A file by size and modification time; a listed folder by the same of every file under
 * it (a moved, deleted or rewritten file shows), up to MAX_LISTED_FILES; any other folder
 * by its existence.
 */
async function hostPrint(p: string, list: boolean): Promise<string> {
  const st = await fs.stat(p, { bigint: true }).catch(() => undefined);
  if (!st) return 'missing';
  if (st.isFile()) return `file ${st.size} ${st.mtimeNs}`;
  if (!st.isDirectory()) return 'other';
  if (!list) return 'dir';
  const lines: string[] = [];
  for await (const [rel, s] of filesUnder(p)) {
    if (lines.length >= MAX_LISTED_FILES) return 'dir';
    lines.push(`${rel} ${s.size} ${s.mtimeNs}`);
  }
  return `folder ${createHash('sha256').update(lines.sort().join('\n')).digest('hex')}`;
}

/** The entry under `key` if it can be served; else why not (undefined: no entry at all). */
export async function findServable(cache: StageCache, store: ArtifactStore, key: string, here?: string): Promise<{ entry?: CacheEntry; stale?: string }> {
  const entry = await cache.get(key);
  if (!entry) return {};
  const stale = await staleReason(entry, store, here);
  return stale ? { stale } : { entry };
}
