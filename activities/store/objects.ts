import fs from 'node:fs/promises';
import path from 'node:path';
import { sha256File, writeAtomically } from '../host-files.js';

/**
 * A flat namespace of objects addressed by `/`-separated keys: where artifacts, the stage
 * cache index and shipped stage logs live when they must be read from more than one host.
 * Implementations: a folder ({@link FolderObjects}) and S3-compatible object storage
 * (`s3-objects.ts`). Every write is atomic: an object is there whole or not at all.
 */
export interface ObjectStore {
  /** Where the objects are, for messages: a folder or `s3://BUCKET/PREFIX`. */
  readonly location: string;
  /** Whether an object exists under `key`. */
  exists(key: string): Promise<boolean>;
  /**
   * Uploads a local file under `key` (large files in parts). With `ifAbsent`, only when
   * nothing is there yet; returns false when something was (content-addressed callers use
   * it: a second copy of the same bytes is never sent).
   */
  putFile(key: string, file: string, opts?: PutOptions & { ifAbsent?: boolean }): Promise<boolean>;
  /**
   * Writes `bytes` under `key`. With `ifAbsent`, writes only when nothing is there yet
   * and returns false when something was (a conditional put where the backend has one).
   */
  putBytes(key: string, bytes: Uint8Array | string, opts?: PutOptions & { ifAbsent?: boolean }): Promise<boolean>;
  /**
   * Downloads `key` into `file` (overwriting it), hashing the bytes as they arrive; throws
   * {@link ObjectMissing} when absent.
   */
  getFile(key: string, file: string, opts?: { signal?: AbortSignal }): Promise<{ sha256: string; bytes: number }>;
  /** The object's bytes, or undefined when absent. For small objects (cache entries, log chunks). */
  getBytes(key: string): Promise<Buffer | undefined>;
  /** Every key under `prefix` with its size, in lexicographic order of key. */
  list(prefix: string): AsyncIterable<{ key: string; size: number }>;
  /** Removes `key`; nothing happens when it is absent. */
  delete(key: string): Promise<void>;
  /** Releases connections. */
  close?(): void;
}

export interface PutOptions {
  contentType?: string;
  signal?: AbortSignal;
}

/** An object that was asked for and is not there. */
export class ObjectMissing extends Error {
  constructor(readonly location: string, readonly key: string) {
    super(`no object ${key} in ${location}`);
    this.name = 'ObjectMissing';
  }
}

/** Keys name objects only: no empty segments, no `.`/`..`, nothing absolute. */
export function checkKey(key: string): string {
  if (!key || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    throw new Error(`not an object key: ${JSON.stringify(key)}`);
  }
  return key;
}

/** Objects as files under a folder (write to a temporary name, then rename). */
export class FolderObjects implements ObjectStore {
  constructor(readonly dir: string) {}

  get location(): string {
    return this.dir;
  }

  fileOf(key: string): string {
    return path.join(this.dir, ...checkKey(key).split('/'));
  }

  async exists(key: string): Promise<boolean> {
    return fs.stat(this.fileOf(key)).then((s) => s.isFile(), () => false);
  }

  async putFile(key: string, file: string, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (opts.ifAbsent && await this.exists(key)) return false;
    await this.place(key, (tmp) => fs.copyFile(file, tmp));
    return true;
  }

  async putBytes(key: string, bytes: Uint8Array | string, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (opts.ifAbsent && await this.exists(key)) return false;
    await this.place(key, (tmp) => fs.writeFile(tmp, bytes));
    return true;
  }

  async getFile(key: string, file: string): Promise<{ sha256: string; bytes: number }> {
    try {
      await fs.copyFile(this.fileOf(key), file);
      return { sha256: await sha256File(file), bytes: (await fs.stat(file)).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectMissing(this.location, key);
      throw err;
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    return fs.readFile(this.fileOf(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const found: Array<{ key: string; size: number }> = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await fs.readdir(path.join(this.dir, rel), { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
        } else if (e.isFile() && key.startsWith(prefix) && !e.name.endsWith('.tmp')) {
          const st = await fs.stat(path.join(this.dir, key)).catch(() => undefined);
          if (st) found.push({ key, size: st.size });
        }
      }
    };
    await walk('');
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.fileOf(key), { force: true });
  }

  private place(key: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
    return writeAtomically(this.fileOf(key), write);
  }
}
