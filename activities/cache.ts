import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../engine/types.js';
import type { HostPathPrints } from './cache-check.js';

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
}

/**
 * Stage-output cache: one small JSON file per key under `$TWINFLOW_HOME/cache`.
 * Bulk data lives in the artifact store; entries hold only outputs (artifact references).
 * Writes are atomic (write then rename), so a crash never leaves a half entry behind.
 */
export class StageCache {
  constructor(readonly dir: string) {}

  private file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a cache key: ${key}`);
    return path.join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      const entry = JSON.parse(await fs.readFile(this.file(key), 'utf8')) as CacheEntry;
      return entry.key === key ? entry : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // A damaged entry is a miss, not a failure: the stage runs and rewrites it.
      if (err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  async put(entry: CacheEntry): Promise<void> {
    const target = this.file(entry.key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(entry, null, 2));
    await fs.rename(tmp, target);
  }

  /** Removes every entry; returns how many there were. */
  async clear(): Promise<number> {
    let count = 0;
    const shards = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const shard of shards) {
      const files = await fs.readdir(path.join(this.dir, shard)).catch(() => [] as string[]);
      count += files.filter((f) => f.endsWith('.json')).length;
    }
    await fs.rm(this.dir, { recursive: true, force: true });
    return count;
  }
}
