import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import sharp from 'sharp';
import { seededRandom } from '../../activities/twin/pairs.js';

/**
 * Small probe datasets in each native layout, written from the demo catalog's real photos
 * (data/demo/images, built by `npm run setup` from Debian's opencv-doc images): one class per
 * product, every picture a seeded random crop of its photo, sometimes mirrored, with its
 * brightness changed, so a class is learnable and no two pictures are the same.
 */

const REPO = path.resolve(import.meta.dirname, '../..');
/** Eight products whose photos show different things (not the catalog's near-duplicates). */
export const PROBE_PRODUCTS = ['TWD0001', 'TWD0002', 'TWD0003', 'TWD0009', 'TWD0015', 'TWD0017', 'TWD0018', 'TWD0020'] as const;
export const PROBE_NAMES = ['Suzanne', 'Aloe', 'Basketball', 'Chessboard', 'Fruits', 'Starry_night', 'Butterfly', 'Baboon'] as const;
export const FIXTURE_PYTHON = path.join(REPO, '.venv/bin/python');

export interface FixtureOptions { train: number; test: number; seed: number }

async function photo(product: string): Promise<string> {
  const dir = path.join(REPO, 'data/demo/images', product);
  const first = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => /^0\.(jpg|png)$/.test(f))[0];
  if (!first) throw new Error(`${dir}/0.jpg is missing: run \`npm run setup\` (it builds the demo catalog in data/demo/) before the tests`);
  return path.join(dir, first);
}

/** Picture `n` of a class: a seeded crop of 60-100% of each side, maybe mirrored, brightness 0.8-1.2, as JPEG. */
async function picture(source: string, random: () => number, size = 160): Promise<Buffer> {
  const meta = await sharp(source).metadata();
  const w = Math.round(meta.width! * (0.6 + 0.4 * random()));
  const h = Math.round(meta.height! * (0.6 + 0.4 * random()));
  const left = Math.floor((meta.width! - w) * random());
  const top = Math.floor((meta.height! - h) * random());
  let img = sharp(source).extract({ left, top, width: w, height: h }).resize(size, size, { fit: 'fill' }).modulate({ brightness: 0.8 + 0.4 * random() });
  if (random() < 0.5) img = img.flop();
  return img.jpeg({ quality: 90 }).toBuffer();
}

/** Every class's pictures: `train` then `test` per class, each `{ cls, split, bytes }`. */
async function pictures(opts: FixtureOptions): Promise<Array<{ cls: number; split: 'train' | 'test'; n: number; bytes: Buffer }>> {
  const random = seededRandom(opts.seed);
  const out = [];
  for (const [cls, product] of PROBE_PRODUCTS.entries()) {
    const source = await photo(product);
    for (let n = 0; n < opts.train + opts.test; n++) out.push({ cls, split: n < opts.train ? 'train' as const : 'test' as const, n, bytes: await picture(source, random) });
  }
  return out;
}

export async function writePets(root: string, opts: FixtureOptions): Promise<string> {
  await fs.mkdir(path.join(root, 'images'), { recursive: true });
  await fs.mkdir(path.join(root, 'annotations'), { recursive: true });
  const lines = { train: ['#Image CLASS-ID SPECIES BREED-ID', '#ID: 1:37 Class ids'], test: ['#Image CLASS-ID SPECIES BREED-ID'] };
  for (const p of await pictures(opts)) {
    const image = `${PROBE_NAMES[p.cls]}_${p.n + 1}`;
    await fs.writeFile(path.join(root, 'images', `${image}.jpg`), p.bytes);
    lines[p.split].push(`${image} ${p.cls + 1} ${p.cls < 4 ? 1 : 2} ${p.cls + 1}`);
  }
  await fs.writeFile(path.join(root, 'annotations', 'trainval.txt'), `${lines.train.join('\n')}\n`);
  await fs.writeFile(path.join(root, 'annotations', 'test.txt'), `${lines.test.join('\n')}\n`);
  return root;
}

/** SUN397: one class two levels deep (`/b/bedroom/indoor/...`), as some SUN397 classes are. */
export async function writeSun397(root: string, opts: FixtureOptions): Promise<string> {
  const lines = { train: [] as string[], test: [] as string[] };
  for (const p of await pictures(opts)) {
    const name = PROBE_NAMES[p.cls]!.toLowerCase();
    const rel = ['', name[0]!, name, ...(p.cls === 1 ? ['indoor'] : []), `sun_${p.split}${p.cls}x${p.n}.jpg`].join('/');
    await fs.mkdir(path.join(root, 'SUN397', path.dirname(rel)), { recursive: true });
    await fs.writeFile(path.join(root, 'SUN397', rel), p.bytes);
    lines[p.split].push(rel);
  }
  await fs.mkdir(path.join(root, 'Partitions'), { recursive: true });
  await fs.writeFile(path.join(root, 'Partitions', 'Training_01.txt'), `${lines.train.join('\n')}\n`);
  await fs.writeFile(path.join(root, 'Partitions', 'Testing_01.txt'), `${lines.test.join('\n')}\n`);
  return root;
}

export async function writeCub(root: string, opts: FixtureOptions): Promise<string> {
  const files = { images: [] as string[], labels: [] as string[], split: [] as string[] };
  let id = 0;
  for (const p of await pictures(opts)) {
    id += 1;
    const folder = `${String(p.cls + 1).padStart(3, '0')}.${PROBE_NAMES[p.cls]}`;
    const rel = `${folder}/${PROBE_NAMES[p.cls]}_${String(id).padStart(4, '0')}.jpg`;
    await fs.mkdir(path.join(root, 'images', folder), { recursive: true });
    await fs.writeFile(path.join(root, 'images', rel), p.bytes);
    files.images.push(`${id} ${rel}`);
    files.labels.push(`${id} ${p.cls + 1}`);
    files.split.push(`${id} ${p.split === 'train' ? 1 : 0}`);
  }
  await fs.writeFile(path.join(root, 'images.txt'), `${files.images.join('\n')}\n`);
  await fs.writeFile(path.join(root, 'image_class_labels.txt'), `${files.labels.join('\n')}\n`);
  await fs.writeFile(path.join(root, 'train_test_split.txt'), `${files.split.join('\n')}\n`);
  await fs.writeFile(path.join(root, 'classes.txt'), `${PROBE_NAMES.map((n, i) => `${i + 1} ${String(i + 1).padStart(3, '0')}.${n}`).join('\n')}\n`);
  return root;
}

/** CIFAR-100's python version: protocol-2 pickles of dicts with bytes keys, data N x 3072 uint8 channel-major (written by numpy + pickle). */
export async function writeCifar100(root: string, opts: FixtureOptions): Promise<string> {
  const dir = path.join(root, 'cifar-100-python');
  await fs.mkdir(dir, { recursive: true });
  const splits = { train: { data: [] as Buffer[], labels: [] as number[] }, test: { data: [] as Buffer[], labels: [] as number[] } };
  for (const p of await pictures(opts)) {
    const hwc = await sharp(p.bytes).resize(32, 32, { fit: 'fill' }).removeAlpha().raw().toBuffer();
    const chw = Buffer.alloc(3072);
    for (let i = 0; i < 1024; i++) for (let c = 0; c < 3; c++) chw[c * 1024 + i] = hwc[i * 3 + c]!;
    splits[p.split].data.push(chw);
    splits[p.split].labels.push(p.cls);
  }
  for (const split of ['train', 'test'] as const) {
    await fs.writeFile(path.join(dir, `${split}.bin`), Buffer.concat(splits[split].data));
    await fs.writeFile(path.join(dir, `${split}.labels.json`), JSON.stringify(splits[split].labels));
  }
  await execa(FIXTURE_PYTHON, ['-c', PICKLE, dir, JSON.stringify(PROBE_NAMES.map((n) => n.toLowerCase()))]);
  return root;
}

const PICKLE = `
import json, pickle, sys
import numpy as np
d, names = sys.argv[1], json.loads(sys.argv[2])
for split in ("train", "test"):
    labels = json.load(open(f"{d}/{split}.labels.json"))
    data = np.fromfile(f"{d}/{split}.bin", dtype=np.uint8).reshape(len(labels), 3072)
    batch = {b"batch_label": split.encode(), b"filenames": [f"{i}.png".encode() for i in range(len(labels))],
             b"fine_labels": labels, b"coarse_labels": [0] * len(labels), b"data": data}
    pickle.dump(batch, open(f"{d}/{split}", "wb"), protocol=2)
meta = {b"fine_label_names": [n.encode() for n in names] + [f"unused_{i}".encode() for i in range(100 - len(names))],
        b"coarse_label_names": [b"all"]}
pickle.dump(meta, open(f"{d}/meta", "wb"), protocol=2)
`;

/** All four layouts under `dir` (pets/, sun397/, cub/, cifar100/), each from its own seed. */
export async function writeProbeFixtures(dir: string, opts: Omit<FixtureOptions, 'seed'>): Promise<Record<'pets' | 'sun397' | 'cub' | 'cifar100', string>> {
  return {
    pets: await writePets(path.join(dir, 'pets'), { ...opts, seed: 1 }),
    sun397: await writeSun397(path.join(dir, 'sun397'), { ...opts, seed: 2 }),
    cub: await writeCub(path.join(dir, 'cub'), { ...opts, seed: 3 }),
    cifar100: await writeCifar100(path.join(dir, 'cifar100'), { ...opts, seed: 4 }),
  };
}
