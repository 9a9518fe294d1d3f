import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { ArtifactStore } from '../artifact-store.js';
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
