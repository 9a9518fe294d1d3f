import path from 'node:path';
import { readJsonl, problemText } from '../data/jsonl.js';
import { readParquetBatches } from '../data/parquet-read.js';
import { datasetFiles, listed, requireColumns, SourceError, type SourceContext } from './source-files.js';
import { SOURCES } from './sources.js';
import { storeImage } from './sources-packed.js';

/**
 * Published FGVQA files (the benchmark as released: `dataset_source`, `question`, `answer`,
 * `question_type`, `images`, `extra`), read as queries with their `question` as is. Parquet
 * in the Hugging Face layout (`data/test-*.parquet`, images as `{bytes, path}`), or JSONL
 * rows such as fgvqa/build's `published` output (images as paths). A row with an image
 * left out (outside the dataset folder, missing, not an image) is left out whole.
 */

/** `dataset_source` values of the published rows, and our source names (from each source's `published`). */
export const PUBLISHED_SOURCES: Record<string, string> = Object.fromEntries(Object.entries(SOURCES).map(([ours, info]) => [info.published, ours]));

export interface PublishedQuery {
  id: string;
  source: string;
  type: 'pair' | 'multi';
  images: string[];
  question: string;
  answer: string;
  extra: Record<string, unknown>;
}

interface PublishedRow {
  dataset_source?: unknown;
  question?: unknown;
  answer?: unknown;
  question_type?: unknown;
  images?: unknown;
  extra?: unknown;
}

/** Every published row of the files under `root` whose source is in `keep` (all when empty). */
export async function readPublished(root: string, ctx: SourceContext, keep: readonly string[]): Promise<PublishedQuery[]> {
  const files = await datasetFiles(root, { match: (n) => n.endsWith('.parquet') || n.endsWith('.jsonl'), wanted: 'published FGVQA files (data/test-*.parquet or *.jsonl)' });
  const out: PublishedQuery[] = [];
  const numbers = new Map<string, number>();
  const ids = new Set<string>();
  for (const file of files) {
    const base = path.dirname(file);
    const rows = file.endsWith('.parquet') ? parquetRows(file) : jsonlRows(file);
    for await (const { row, where } of rows) {
      const source = PUBLISHED_SOURCES[String(row.dataset_source)];
      if (!source) throw new SourceError(`${where}: unknown dataset_source ${JSON.stringify(row.dataset_source)}; expected one of ${Object.keys(PUBLISHED_SOURCES).join(', ')}`);
      if (keep.length && !keep.includes(source)) continue;
      if (typeof row.question !== 'string' || !row.question.trim()) throw new SourceError(`${where}: no question`);
      const type = row.question_type === 'pairwise' ? 'pair' : 'multi';
      const answer = String(row.answer ?? '').trim().toLowerCase();
      if (type === 'pair' ? !['yes', 'no'].includes(answer) : !/^[0-3]$/.test(answer)) throw new SourceError(`${where}: answer ${JSON.stringify(row.answer)} is not a ${type === 'pair' ? 'yes/no' : '0-3'} answer`);
      if (!Array.isArray(row.images)) throw new SourceError(`${where}: images is not a list`);
      const images: string[] = [];
      let skipped = false;
      for (const [k, image] of row.images.entries()) {
        const stored = await imagePath(ctx, image, base, `${where}: image ${k}`);
        if (stored) images.push(stored);
        else skipped = true;
      }
      if (skipped) continue;
      if (images.length < 2) throw new SourceError(`${where}: a query needs at least two images; it has ${images.length}`);
      const extra = parseExtra(row.extra, where);
      const n = (numbers.get(`${source}:${type}`) ?? 0) + 1;
      numbers.set(`${source}:${type}`, n);
      let id = typeof extra.id === 'string' && extra.id ? extra.id : `${source}-${type}-${String(n).padStart(5, '0')}`;
      if (ids.has(id)) id = `${id}-${n}`;
      ids.add(id);
      out.push({ id, source, type, images, question: row.question, answer, extra });
    }
  }
  return out;
}

async function* jsonlRows(file: string): AsyncGenerator<{ row: PublishedRow; where: string }> {
  for await (const { value, line } of readJsonl<PublishedRow>(file, (p) => { throw new SourceError(`${file}:${p.line}: ${problemText(p)}`); })) {
    yield { row: value, where: `${file}:${line}` };
  }
}

async function* parquetRows(file: string): AsyncGenerator<{ row: PublishedRow; where: string }> {
  await requireColumns(file, ['dataset_source', 'question', 'answer', 'question_type', 'images']);
  let n = 0;
  for await (const table of readParquetBatches(file, { batchSize: 64 })) {
    for (const row of table) {
      const json = row as unknown as PublishedRow & { images?: unknown };
      const images = json.images as Iterable<unknown> | null | undefined;
      yield {
        row: { ...(row.toJSON() as PublishedRow), images: images ? [...images] : images },
        where: `${file}: row ${n++}`,
      };
    }
  }
}

/**
 * An image of a published row: a path (relative to the file), `{path}`, or `{bytes}`
 * (stored). A path must stay inside the dataset folder (or name an image already in the
 * artifact store, as our own published rows do) and be an image file; it is copied into
 * the store, so the query names its content.
 */
async function imagePath(ctx: SourceContext, image: unknown, base: string, where: string): Promise<string | undefined> {
  if (typeof image === 'string' && image.startsWith('artifact:sha256:')) return storedImage(ctx, image, where);
  if (typeof image === 'string') return hostImage(ctx, base, image, where);
  if (image instanceof Uint8Array) return storeImage(ctx, Buffer.from(image), where);
  const o = image as { bytes?: unknown; path?: unknown } | null;
  if (o?.bytes instanceof Uint8Array && o.bytes.length) return storeImage(ctx, Buffer.from(o.bytes), where);
  if (typeof o?.bytes === 'string' && o.bytes) return storeImage(ctx, Buffer.from(o.bytes, 'base64'), where);
  if (typeof o?.path === 'string' && o.path) return hostImage(ctx, base, o.path, where);
  throw new SourceError(`${where}: expected a path, {bytes} or {path}`);
}

/** An image our own published rows name by artifact URI: usable when the store has it. */
async function storedImage(ctx: SourceContext, uri: string, where: string): Promise<string | undefined> {
  const known = await ctx.store.has(uri).catch(() => false);
  return known ? uri : void ctx.skip(where, `${uri} is not in the artifact store at ${ctx.store.location}`);
}

async function hostImage(ctx: SourceContext, base: string, rel: string, where: string): Promise<string | undefined> {
  const file = listed(ctx, base, rel, where);
  if (!file) return undefined;
  const checked = await ctx.checker.copy(file);
  if (checked.why !== undefined) return void ctx.skip(where, checked.why);
  return checked.file;
}

function parseExtra(extra: unknown, where: string): Record<string, unknown> {
  if (extra === undefined || extra === null || extra === '') return {};
  if (typeof extra === 'string') {
    try {
      const parsed: unknown = JSON.parse(extra);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new SourceError(`${where}: extra is not a JSON object`);
  }
  if (typeof extra === 'object' && !Array.isArray(extra)) return extra as Record<string, unknown>;
  throw new SourceError(`${where}: extra is not an object`);
}
