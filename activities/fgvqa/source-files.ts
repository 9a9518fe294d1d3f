import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ArtifactStore } from '../artifact-store.js';
import { parquetColumns } from '../data/parquet-read.js';
import type { Domain } from './prompts.js';
import type { Identity } from './queries.js';

/** What every FGVQA source reader shares: its error, its context, reading lines, grouping by identity. */

export class SourceError extends Error {}

/** What a reader may use besides the dataset: images packed in shards or Parquet go to the store. */
export interface SourceContext {
  store: ArtifactStore;
  /** An image left out (unreadable, not an image), with where it was and why; reading goes on. */
  skip(where: string, why: string): void;
  /** Called for each image taken out of a shard or a Parquet file, for progress. */
  stored?(): void;
}

export interface SourceInfo {
  domain: Domain;
  /** `dataset_source` of the published FGVQA rows. */
  published: string;
  read(root: string, ctx: SourceContext): Promise<Identity[]>;
}

export const exists = (file: string) => fs.access(file).then(() => true, () => false);

/**
 * A dataset's files: `root` itself when it is one (`isFile` by name), else the files that
 * `match` in `root/data/` (the Hugging Face layout) and then in `root`, each sorted. None is
 * an error that says what was looked for (`wanted`) and what to do (`hint`).
 */
export async function datasetFiles(root: string, opts: { match: (name: string) => boolean; isFile?: (name: string) => boolean; wanted: string; hint?: string }): Promise<string[]> {
  if ((opts.isFile ?? opts.match)(root)) {
    if (!(await exists(root))) throw new SourceError(`${root} is missing`);
    return [root];
  }
  const list = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).filter(opts.match).sort().map((n) => path.join(dir, n));
  const files = [...(await list(path.join(root, 'data'))), ...(await list(root))];
  if (!files.length) throw new SourceError(`no ${opts.wanted} in ${root}${opts.hint ? `; ${opts.hint}` : ''}`);
  return files;
}

/** A Parquet file's columns, or an error naming the `required` ones it lacks. */
export async function requireColumns(file: string, required: readonly string[], joiner = ', '): Promise<string[]> {
  const columns = await parquetColumns(file);
  const missing = required.filter((c) => !columns.includes(c));
  if (missing.length) throw new SourceError(`${file}: no ${missing.join(joiner)} column (it has ${columns.join(', ')})`);
  return columns;
}

export async function* lines(file: string): AsyncGenerator<{ text: string; line: number }> {
  if (!(await exists(file))) throw new SourceError(`${file} is missing`);
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    line++;
    if (text.trim()) yield { text, line };
  }
}

export function group(pairs: Iterable<[identity: string, image: string]>): Identity[] {
  const by = new Map<string, string[]>();
  for (const [id, image] of pairs) {
    const list = by.get(id);
    if (list) list.push(image);
    else by.set(id, [image]);
  }
  return [...by].map(([id, images]) => ({ id, images }));
}
