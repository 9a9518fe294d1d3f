import fs from 'node:fs/promises';
import path from 'node:path';
import { readJsonl, type JsonlProblem } from '../data/jsonl.js';
import type { Identity } from './queries.js';
import { exists, group, lines, listed, SourceError, type SourceContext, type SourceInfo } from './source-files.js';
import { readIlias, readInquire } from './sources-packed.js';

export { SourceError } from './source-files.js';

/**
 * Source datasets in their own on-disk layouts, read into images grouped by identity.
 * Each reader names the file and line of anything it cannot read, and leaves out (with
 * where and why) any path that leads outside the dataset folder; whether a listed file
 * is really an image is checked when a query draws it.
 */

/** `<key> <value>` lines (CUB's index files) into a map, each value with its line. */
export async function keyValues(file: string): Promise<Map<string, { value: string; line: number }>> {
  const out = new Map<string, { value: string; line: number }>();
  for await (const { text, line } of lines(file)) {
    const m = text.trim().match(/^(\S+)\s+(.+)$/);
    if (!m) throw new SourceError(`${file}:${line}: expected "<id> <value>"`);
    out.set(m[1]!, { value: m[2]!.trim(), line });
  }
  return out;
}

/** CUB-200-2011: the test split (`is_training_image` 0), one identity per species. */
async function readCub(root: string, ctx: SourceContext): Promise<Identity[]> {
  // One after another, so a missing file is always reported in the same order.
  const index = path.join(root, 'images.txt');
  const images = await keyValues(index);
  const labels = await keyValues(path.join(root, 'image_class_labels.txt'));
  const split = await keyValues(path.join(root, 'train_test_split.txt'));
  const names = await keyValues(path.join(root, 'classes.txt')).catch(() => new Map<string, { value: string }>());
  const out: Array<[string, string]> = [];
  for (const [id, { value: rel, line }] of images) {
    if (split.get(id)?.value !== '0') continue;
    const label = labels.get(id)?.value;
    if (label === undefined) throw new SourceError(`${path.join(root, 'image_class_labels.txt')}: no class for image ${id}`);
    const file = listed(ctx, path.join(root, 'images'), rel, `${index}:${line}`);
    if (file) out.push([names.get(label)?.value ?? label, file]);
  }
  return group(out);
}

/** Google Landmarks v2: `train.csv` (`id,url,landmark_id`), images at `train/a/b/c/<id>.jpg`. */
async function readLandmarks(root: string): Promise<Identity[]> {
  // The id is checked as hex below, so every path it makes is inside train/ by name.
  const file = path.join(root, 'train.csv');
  const out: Array<[string, string]> = [];
  let columns: { id: number; label: number; count: number } | undefined;
  for await (const { text, line } of lines(file)) {
    const cells = text.split(',');
    if (!columns) {
      columns = { id: cells.indexOf('id'), label: cells.indexOf('landmark_id'), count: cells.length };
      if (columns.id < 0 || columns.label < 0) throw new SourceError(`${file}:1: expected a header with id and landmark_id`);
      continue;
    }
    const id = cells[columns.id]?.trim();
    // A URL may hold commas: a last-column label is read from the end.
    const label = (columns.label === columns.count - 1 ? cells[cells.length - 1] : cells[columns.label])?.trim();
    if (!id || !/^[0-9a-f]{3,}$/i.test(id) || !label) throw new SourceError(`${file}:${line}: expected id,url,landmark_id`);
    out.push([label, path.join(root, 'train', id[0]!, id[1]!, id[2]!, `${id}.jpg`)]);
  }
  return group(out);
}

/** Twin-Eval: the eval split of a twin/assemble dataset folder; real images of positive and hard-negative rows. */
async function readTwinEval(root: string, ctx: SourceContext): Promise<Identity[]> {
  const rowsFile = path.join(root, 'eval.jsonl');
  const metaFile = path.join(root, 'eval.meta.jsonl');
  const malformed = (p: JsonlProblem) => { throw new SourceError(`${p.file}:${p.line}: ${p.message}`); };
  const rows = readJsonl<{ image_1?: unknown; image_2?: unknown }>(rowsFile, malformed)[Symbol.asyncIterator]();
  const seen = new Map<string, string>();
  for await (const { value: meta, line } of readJsonl<{ kind?: unknown; instance_1?: unknown; instance_2?: unknown }>(metaFile, malformed)) {
    const next = (await rows.next()).value as { value: { image_1?: unknown; image_2?: unknown }; line: number } | undefined;
    if (!next) throw new SourceError(`${metaFile}:${line}: ${rowsFile} has fewer rows than its meta file`);
    if (meta.kind !== 'positive' && meta.kind !== 'hard-negative') continue;
    const { value: row, line: rowLine } = next;
    const pairs = [[row.image_1, meta.instance_1], [row.image_2, meta.instance_2]];
    if (!pairs.every(([image, id]) => typeof image === 'string' && image && typeof id === 'string' && id)) {
      throw new SourceError(`${rowsFile}:${rowLine} / ${metaFile}:${line}: expected image_1 and image_2 paths and instance_1 and instance_2 names`);
    }
    for (const [image, id] of pairs as Array<[string, string]>) {
      const file = listed(ctx, root, image, `${rowsFile}:${rowLine}`);
      if (file) seen.set(file, id);
    }
  }
  return group([...seen].map(([image, id]) => [id, image]));
}

/**
 * The Met dataset: the mini ground truth, `mini_MET_database.json` (a JSON array of
 * `{"id": <exhibit id>, "path": "MET/<id>/<n>.jpg"}`), in the root or its `ground_truth/`.
 * Image paths are relative to the root, or to `root/images/` as the dataset's own loaders read them.
 */
async function readMet(root: string, ctx: SourceContext): Promise<Identity[]> {
  const candidates = [path.join(root, 'mini_MET_database.json'), path.join(root, 'ground_truth', 'mini_MET_database.json')];
  const file = (await Promise.all(candidates.map(async (f) => ((await exists(f)) ? f : undefined)))).find(Boolean);
  if (!file) throw new SourceError(`no mini_MET_database.json in ${root} or ${path.join(root, 'ground_truth')}; point root at the MET dataset folder`);
  let entries: unknown;
  try {
    entries = JSON.parse((await fs.readFile(file, 'utf8')).replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new SourceError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(entries)) throw new SourceError(`${file}: expected a JSON array of {"id", "path"} entries`);
  const out: Array<[string, string]> = [];
  entries.forEach((e: { id?: unknown; path?: unknown }, i) => {
    if ((typeof e?.id !== 'number' && typeof e?.id !== 'string') || typeof e.path !== 'string' || !e.path) {
      throw new SourceError(`${file}: entry ${i} needs "id" (the exhibit) and "path" (the image); got ${JSON.stringify(e).slice(0, 120)}`);
    }
    out.push([String(e.id), e.path]);
  });
  const [first] = out;
  let base = root;
  if (first && !(await exists(path.resolve(root, first[1])))) {
    base = path.join(root, 'images');
    if (!(await exists(path.resolve(base, first[1])))) throw new SourceError(`${file}: the first image, ${first[1]}, is neither in ${root} nor in ${base}`);
  }
  return group(out.flatMap(([id, rel], i) => {
    const image = listed(ctx, base, rel, `${file}: entry ${i}`);
    return image ? [[id, image] as [string, string]] : [];
  }));
}

export const SOURCES: Record<string, SourceInfo> = {
  cub: { domain: 'species', published: 'fgvqa_cub', read: readCub },
  landmarks: { domain: 'landmark', published: 'fgvqa_google_landmarks', read: readLandmarks },
  met: { domain: 'artwork', published: 'fgvqa_met', read: readMet },
  ilias: { domain: 'instance', published: 'fgvqa_ilias', read: readIlias },
  inquire: { domain: 'species', published: 'fgvqa_inquire', read: readInquire },
  'twin-eval': { domain: 'instance', published: 'twin', read: readTwinEval },
};
