import type { JsonObject } from '../engine/types.js';
import type { HostPathPrints } from './cache-check.js';
import { FolderObjects, type ObjectStore } from './store/objects.js';

/** What the cache keeps for one stage key. */
export interface CacheEntry {
  key: string;
  uses: string;
  kindVersion: string;
  outputs: JsonObject;
  createdAt: string;
  runId: string;
  stageId: string;
  /** Host paths the outputs name, as they were when the entry was written (see cache-check.ts). */
  hostPaths?: HostPathPrints;
  /** The host (and TWINFLOW_HOME) that wrote it: host paths can only be checked there. */
  host?: string;
}

/**
 * Stage-output cache: one small JSON object per key, with the store (a folder under
 * `$TWINFLOW_HOME/cache` on one host, `cache/` beside the artifacts in S3 for many), so a
 * hit on any host is a hit everywhere. Bulk data lives in the artifact store; entries hold
 * only outputs (artifact references). An entry is written after the outputs it names, in
 * one atomic put, so a crash never leaves a half entry and never an entry without outputs.
 */
export class StageCache {
  readonly objects: ObjectStore;

  constructor(where: string | ObjectStore, readonly prefix = '') {
    this.objects = typeof where === 'string' ? new FolderObjects(where) : where;
  }

  private keyOf(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a cache key: ${key}`);
    return `${this.prefix}${key.slice(0, 2)}/${key}.json`;
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    const bytes = await this.objects.getBytes(this.keyOf(key));
    if (!bytes) return undefined;
    try {
      const entry = JSON.parse(bytes.toString('utf8')) as CacheEntry;
      return entry.key === key ? entry : undefined;
    } catch (err) {
      // A damaged entry is a miss, not a failure: the stage runs and rewrites it.
      if (err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** Writes an entry, replacing what is there. */
  async put(entry: CacheEntry): Promise<void> {
    await this.objects.putBytes(this.keyOf(entry.key), JSON.stringify(entry, null, 2), { contentType: 'application/json' });
  }

  /**
   * Writes an entry only when the key has none (a conditional put): when two hosts finish
   * the same stage at once, the first entry stays and every later run sees the same outputs.
   * Returns false when an entry was there.
   */
  async putIfAbsent(entry: CacheEntry): Promise<boolean> {
    return this.objects.putBytes(this.keyOf(entry.key), JSON.stringify(entry, null, 2), { contentType: 'application/json', ifAbsent: true });
  }

  /** Removes every entry; returns how many there were. */
  async clear(): Promise<number> {
    let count = 0;
    for await (const { key } of this.objects.list(this.prefix)) {
      if (!key.endsWith('.json')) continue;
      await this.objects.delete(key);
      count++;
    }
    return count;
  }
}
