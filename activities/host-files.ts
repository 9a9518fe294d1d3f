import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** Helpers for files on the worker's host: their digests, their place under a folder, listing them. */

/**
 * Writes `target` through a temporary file beside it, renamed into place once `write` is
 * done: readers see the whole file or none, and a failed write leaves nothing behind.
 */
export async function writeAtomically(target: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.${randomUUID()}.tmp`;
  try {
    await write(tmp);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** sha256 hex of a file's bytes, read as a stream so a large file never sits in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Whether `file` is `dir` or lies under it (both absolute and normalized; by name only). */
export function within(dir: string, file: string): boolean {
  return file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

/** The stats cache keys and cache checks read of a file. */
export interface FileStat {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * Every regular file under a folder with its stats (nanosecond times), depth first,
 * without following symbolic links; paths relative to the folder, `/`-separated. Lazy, so
 * a caller with a limit stops the walk early.
 */
export async function* filesUnder(root: string, rel = ''): AsyncGenerator<[string, FileStat]> {
  const dir = await fs.opendir(path.join(root, rel)).catch(() => undefined);
  if (!dir) return;
  for await (const e of dir) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) yield* filesUnder(root, child);
    else if (e.isFile()) {
      const s = await fs.stat(path.join(root, child), { bigint: true }).catch(() => undefined);
      if (s) yield [child, s];
    }
  }
}
