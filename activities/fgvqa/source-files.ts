import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifact-store.js';
import { defaultMaxLineBytes, readLines } from '../data/lines.js';
import { parquetColumns } from '../data/parquet-read.js';
import type { ImageChecker } from './image-check.js';
import type { Domain } from './prompts.js';
import type { Identity } from './queries.js';

/** What every FGVQA source reader shares: its error, its context, reading lines, grouping by identity. */

export class SourceError extends Error {}

/** What a reader may use besides the dataset: images packed in shards or Parquet go to the store. */
export interface SourceContext {
  store: ArtifactStore;
  /** Where paths the dataset names may lead, and the check an image passes before a query shows it. */
  checker: ImageChecker;
  /** An image left out (outside the dataset, missing, unreadable, not an image), with where it was and why; reading goes on. */
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

/** The non-blank lines of a text file (a BOM dropped); a line past the cap is an error with its number. */
export async function* lines(file: string): AsyncGenerator<{ text: string; line: number }> {
  if (!(await exists(file))) throw new SourceError(`${file} is missing`);
  for await (const item of readLines(file)) {
    if (item.tooLong !== undefined) {
      throw new SourceError(`${file}:${item.line}: the line is ${item.tooLong} bytes, longer than the ${defaultMaxLineBytes()}-byte limit (TWINFLOW_MAX_LINE_BYTES); is this the dataset's own file?`);
    }
    if (item.text.trim()) yield { text: item.text, line: item.line };
  }
}

/**
 * A path the dataset names (`rel`, against the folder `base`), or undefined when it leaves
 * the dataset folder (skipped, with where and why). Links are followed later, when the
 * image is checked: resolving every listed file up front would take hours on GLDv2.
 */
export function listed(ctx: SourceContext, base: string, rel: string, where: string): string | undefined {
  const placed = ctx.checker.place(base, rel);
  if (placed.why !== undefined) return void ctx.skip(where, placed.why);
  return placed.file;
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
