import fs from 'node:fs/promises';
import path from 'node:path';

/** A file used this recently is never evicted: a stage may hold its path without having opened it yet. */
const GRACE_MS = 10 * 60_000;

/**
 * Keeps a host's read-through cache of remote artifacts under a size bound, least recently
 * used first. Use is the file's modification time, set on every read through the store
 * (`touch`), so the order survives restarts and is shared by every worker of the host.
 * The folder is measured once, on the first addition, then kept by increments; eviction
 * measures again, so other processes' additions are counted then.
 */
export class LocalCacheBudget {
  private used?: number;
  private evicting?: Promise<void>;
  private readonly touched = new Map<string, number>();

  constructor(readonly dir: string, readonly maxBytes: number, readonly graceMs = GRACE_MS) {}

  /** Marks a cached file as used now (at most once a minute per file: it is a write). */
  touch(file: string): void {
    const now = Date.now();
    if (now - (this.touched.get(file) ?? 0) < 60_000) return;
    this.touched.set(file, now);
    if (this.touched.size > 100_000) this.touched.clear();
    const t = new Date(now);
    void fs.utimes(file, t, t).catch(() => undefined);
  }

  /** Counts a file just placed in the cache and evicts when the bound is passed. */
  async added(bytes: number, file: string): Promise<void> {
    this.touched.set(file, Date.now());
    this.used = (this.used ?? (await this.measure()).reduce((sum, f) => sum + f.size, 0)) + bytes;
    if (this.used <= this.maxBytes) return;
    this.evicting ??= this.evict().finally(() => (this.evicting = undefined));
    await this.evicting;
  }

  /** Removes least recently used files until the cache is under 90% of its bound. */
  private async evict(): Promise<void> {
    const files = (await this.measure()).sort((a, b) => a.mtimeMs - b.mtimeMs);
    let used = files.reduce((sum, f) => sum + f.size, 0);
    const target = this.maxBytes * 0.9;
    const now = Date.now();
    for (const f of files) {
      if (used <= target) break;
      if (now - f.mtimeMs < this.graceMs || now - (this.touched.get(f.file) ?? 0) < this.graceMs) continue;
      await fs.rm(f.file, { force: true });
      this.touched.delete(f.file);
      used -= f.size;
    }
    this.used = used;
  }

  private async measure(): Promise<Array<{ file: string; size: number; mtimeMs: number }>> {
    const out: Array<{ file: string; size: number; mtimeMs: number }> = [];
    const shards = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const shard of shards) {
      const names = await fs.readdir(path.join(this.dir, shard)).catch(() => [] as string[]);
      for (const name of names) {
        if (name.endsWith('.tmp')) continue;
        const file = path.join(this.dir, shard, name);
        const st = await fs.stat(file).catch(() => undefined);
        if (st?.isFile()) out.push({ file, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
    return out;
  }
}
