import fs from 'node:fs/promises';
import path from 'node:path';
import { keyValues } from '../fgvqa/sources.js';
import { lines } from '../fgvqa/source-files.js';
import { seededRandom } from '../twin/pairs.js';

/**
 * The probe datasets' own layouts read into classes and train/test images. Each reader
 * names the file (and line) it cannot use and what the layout expects; image files are
 * checked when they are decoded. CIFAR-100's pickles are decoded in Python (cifar.ts).
 */

/** An image file, or one picture of a raw RGB file (N x size x size x 3 bytes, HWC). */
export type ProbeImage = { file: string } | { rgb: string; index: number; size: number };
export interface ProbeSplit { images: ProbeImage[]; labels: number[] }
export interface ProbeData { classes: string[]; train: ProbeSplit; test: ProbeSplit }

/** A dataset folder that is not in the layout asked for: the message says where and what to do. */
export class LayoutError extends Error {}

/** Oxford-IIIT Pets: `annotations/trainval.txt` and `test.txt` (`Image CLASS-ID SPECIES BREED-ID`), `images/<Image>.jpg`. */
export async function readPets(root: string): Promise<ProbeData> {
  const names = new Map<number, string>();
  const split = async (file: string): Promise<ProbeSplit> => {
    const out: ProbeSplit = { images: [], labels: [] };
    for await (const { text, line } of lines(file)) {
      if (text.startsWith('#')) continue;
      const m = /^(\S+)\s+(\d+)\s+\d+\s+\d+\s*$/.exec(text);
      if (!m || m[1]!.includes('/') || m[1]!.includes('\\')) throw new LayoutError(`${file}:${line}: expected "Image CLASS-ID SPECIES BREED-ID"`);
      const id = Number(m[2]);
      names.set(id, names.get(id) ?? m[1]!.replace(/_\d+$/, ''));
      out.images.push({ file: path.join(root, 'images', `${m[1]}.jpg`) });
      out.labels.push(id);
    }
    return out;
  };
  const train = await split(path.join(root, 'annotations', 'trainval.txt'));
  const test = await split(path.join(root, 'annotations', 'test.txt'));
  const ids = [...names.keys()].sort((a, b) => a - b);
  const index = new Map(ids.map((id, i) => [id, i]));
  const relabel = (s: ProbeSplit) => ({ images: s.images, labels: s.labels.map((l) => index.get(l)!) });
  return { classes: ids.map((id) => names.get(id)!), train: relabel(train), test: relabel(test) };
}

/**
 * SUN397: `SUN397/<letter>/<class>/.../sun_*.jpg` and the partition files
 * `Training_NN.txt` / `Testing_NN.txt` (in `Partitions/`, the root or `SUN397/`), one
 * `/a/abbey/sun_xxx.jpg` path a line; the class is the path between the letter and the file.
 */
export async function readSun397(root: string, partition: number): Promise<ProbeData> {
  const nn = String(partition).padStart(2, '0');
  const places = [path.join(root, 'Partitions'), root, path.join(root, 'SUN397')];
  const dir = (await Promise.all(places.map((p) => exists(path.join(p, `Training_${nn}.txt`))))).findIndex(Boolean);
  if (dir < 0) throw new LayoutError(`no Training_${nn}.txt in ${places.join(', ')}: SUN397 needs its partition files (Partitions.zip) beside the images`);
  const images = (await exists(path.join(root, 'SUN397'))) ? path.join(root, 'SUN397') : root;
  const read = async (file: string) => {
    const out: Array<{ file: string; name: string }> = [];
    for await (const { text, line } of lines(file)) {
      const parts = text.trim().split('/').filter(Boolean);
      if (parts.length < 3 || parts.some((p) => p === '..' || p === '.') || !/^[a-z]$/.test(parts[0]!)) {
        throw new LayoutError(`${file}:${line}: expected a path like /a/abbey/sun_aaa.jpg`);
      }
      out.push({ file: path.join(images, ...parts), name: parts.slice(1, -1).join('/') });
    }
    return out;
  };
  const train = await read(path.join(places[dir]!, `Training_${nn}.txt`));
  const test = await read(path.join(places[dir]!, `Testing_${nn}.txt`));
  const classes = [...new Set([...train, ...test].map((x) => x.name))].sort();
  const index = new Map(classes.map((c, i) => [c, i]));
  const split = (xs: typeof train) => ({ images: xs.map((x) => ({ file: x.file })), labels: xs.map((x) => index.get(x.name)!) });
  return { classes, train: split(train), test: split(test) };
}

/** CUB-200-2011: `images.txt`, `image_class_labels.txt`, `train_test_split.txt`, `classes.txt`, `images/` (fgvqa/build's index reader). */
export async function readCub(root: string): Promise<ProbeData> {
  const index = path.join(root, 'images.txt');
  const images = await keyValues(index);
  const labels = await keyValues(path.join(root, 'image_class_labels.txt'));
  const split = await keyValues(path.join(root, 'train_test_split.txt'));
  const names = await keyValues(path.join(root, 'classes.txt')).catch(() => new Map<string, { value: string }>());
  const ids = [...new Set([...labels.values()].map((l) => l.value))].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  const order = new Map(ids.map((id, i) => [id, i]));
  const out = { train: { images: [], labels: [] } as ProbeSplit, test: { images: [], labels: [] } as ProbeSplit };
  for (const [id, { value: rel, line }] of images) {
    const label = labels.get(id)?.value;
    const flag = split.get(id)?.value;
    if (label === undefined || (flag !== '0' && flag !== '1')) {
      throw new LayoutError(`${index}:${line}: image ${id} has no ${label === undefined ? 'class in image_class_labels.txt' : 'train/test flag in train_test_split.txt'}`);
    }
    if (rel.split(/[\\/]/).includes('..') || path.isAbsolute(rel)) throw new LayoutError(`${index}:${line}: ${rel} leaves the images folder`);
    const into = flag === '1' ? out.train : out.test;
    into.images.push({ file: path.join(root, 'images', rel) });
    into.labels.push(order.get(label)!);
  }
  return { classes: ids.map((id) => names.get(id)?.value ?? id), ...out };
}

/** At most `max` images per class, drawn by the seed, in their original order. */
export function capPerClass(split: ProbeSplit, max: number | undefined, seed: number): ProbeSplit {
  if (max === undefined) return split;
  const random = seededRandom(seed);
  const byClass = new Map<number, number[]>();
  split.labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const keep = new Set<number>();
  for (const [, rows] of [...byClass].sort((a, b) => a[0] - b[0])) {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    rows.slice(0, max).forEach((r) => keep.add(r));
  }
  const rows = [...keep].sort((a, b) => a - b);
  return { images: rows.map((r) => split.images[r]!), labels: rows.map((r) => split.labels[r]!) };
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);
