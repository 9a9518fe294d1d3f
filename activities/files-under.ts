import fs from 'node:fs/promises';
import path from 'node:path';

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
