import fs from 'node:fs/promises';
import path from 'node:path';
import { Binary, Field, Int64, Struct, Utf8, vectorFromArray } from 'apache-arrow';
import { pack } from 'tar-stream';
import { jpeg, writeParquetFile } from './fgvqa-fixtures.js';

/**
 * Small but real FGVQA source datasets, each in its own on-disk layout, with real JPEGs:
 * every identity has its own colour (and its images small shifts of it), so an image
 * encoder can tell identities apart.
 */

/** Identity i's colour, shifted a little for its image k. */
export function colourOf(i: number, k: number): [number, number, number] {
  const hues: Array<[number, number, number]> = [[220, 30, 30], [30, 200, 40], [40, 60, 220], [230, 210, 30], [200, 40, 200], [30, 200, 210], [240, 140, 20], [120, 120, 120]];
  // Eight clearly different hues first; past them, colours spread by a multiplicative hash.
  const [r, g, b] = i < hues.length ? hues[i]! : [(37 * i) % 256, (91 * i + 50) % 256, (151 * i + 100) % 256];
  const shift = 6 * k;
  return [Math.min(255, r + shift), Math.max(0, g - shift / 2), Math.min(255, b + shift / 3)];
}

const picture = (i: number, k: number) => jpeg(...colourOf(i, k), 32);

async function put(file: string, bytes: Buffer | string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, bytes);
}

/** CUB-200-2011: index files and images/<class>/<file>.jpg; the first image of each species is in the train split. */
export async function writeCubDataset(root: string, species: number, perSpecies: number): Promise<void> {
  const images: string[] = [], labels: string[] = [], split: string[] = [], classes: string[] = [];
  let n = 0;
  for (let s = 0; s < species; s++) {
    const cls = `${String(s + 1).padStart(3, '0')}.Species_${s + 1}`;
    classes.push(`${s + 1} ${cls}`);
    for (let k = 0; k <= perSpecies; k++) {
      n++;
      images.push(`${n} ${cls}/${cls}_${n}.jpg`);
      labels.push(`${n} ${s + 1}`);
      split.push(`${n} ${k === 0 ? 1 : 0}`);
      await put(path.join(root, 'images', cls, `${cls}_${n}.jpg`), await picture(s, k));
    }
  }
  for (const [name, lines] of Object.entries({ 'images.txt': images, 'image_class_labels.txt': labels, 'train_test_split.txt': split, 'classes.txt': classes })) {
    await put(path.join(root, name), lines.join('\n') + '\n');
  }
}

/** Google Landmarks v2: train.csv (id,url,landmark_id) and train/a/b/c/<id>.jpg. */
export async function writeLandmarksDataset(root: string, landmarks: number, perLandmark: number): Promise<void> {
  const lines = ['id,url,landmark_id'];
  for (let l = 0; l < landmarks; l++) {
    for (let k = 0; k < perLandmark; k++) {
      const id = (0xa1b2c3d4 + l * 97 + k).toString(16).padStart(16, '0');
      lines.push(`${id},https://upload.example.org/${l}/${k}.jpg,${7000 + l}`);
      await put(path.join(root, 'train', id[0]!, id[1]!, id[2]!, `${id}.jpg`), await picture(l, k));
    }
  }
  await put(path.join(root, 'train.csv'), lines.join('\n') + '\n');
}

/** The Met dataset: ground_truth/mini_MET_database.json and images/MET/<id>/<n>.jpg. */
export async function writeMetDataset(root: string, exhibits: number, perExhibit: number): Promise<void> {
  const entries: Array<{ id: number; path: string }> = [];
  for (let id = 0; id < exhibits; id++) {
    for (let n = 0; n < perExhibit; n++) {
      const rel = `MET/${1000 + id}/${n}.jpg`;
      await put(path.join(root, 'images', rel), await picture(id, n));
      entries.push({ id: 1000 + id, path: rel });
    }
  }
  await put(path.join(root, 'ground_truth', 'mini_MET_database.json'), JSON.stringify(entries));
}

/** A webdataset tar shard of the given members. */
export async function writeTarShard(file: string, members: Array<[name: string, bytes: Buffer]>): Promise<void> {
  const p = pack();
  for (const [name, bytes] of members) p.entry({ name }, bytes);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  await put(file, Buffer.concat(chunks));
}

/** ILIAS core_db: webdataset shards of <instance>/pos/P<iii>_<kk>.jpg with a _bbox.txt beside each image. */
export async function writeIliasDataset(root: string, shards: number[][], perInstance: number): Promise<void> {
  for (const [n, instances] of shards.entries()) {
    const members: Array<[string, Buffer]> = [];
    for (const i of instances) {
      const name = `obj_${String(i).padStart(3, '0')}`;
      for (let k = 0; k < perInstance; k++) {
        const stem = `${name}/pos/P${String(i).padStart(3, '0')}_${String(k).padStart(2, '0')}`;
        members.push([`${stem}.jpg`, await picture(i, k)], [`${stem}_bbox.txt`, Buffer.from('1 2 3 4\n')]);
      }
    }
    await writeTarShard(path.join(root, `ilias-core-db-${String(n).padStart(6, '0')}.tar`), members);
  }
}

export const imageStruct = new Struct([new Field('bytes', new Binary(), true), new Field('path', new Utf8(), true)]);

/** INQUIRE-Rerank validation: data/validation-*.parquet, each image listed under two text queries. */
export async function writeInquireDataset(root: string, species: number, perSpecies: number, extra: { image: Buffer; species: string | null }[] = []): Promise<void> {
  const images: Array<{ bytes: Uint8Array; path: string }> = [];
  const ids: bigint[] = [];
  const names: Array<string | null> = [];
  const queries: string[] = [];
  for (let s = 0; s < species; s++) {
    for (let k = 0; k < perSpecies; k++) {
      const bytes = await picture(s, k);
      for (const q of ['a hummingbird feeding', 'an animal at night']) {
        images.push({ bytes, path: `${s}-${k}.jpg` });
        ids.push(BigInt(s * 100 + k));
        names.push(`Species ${s}`);
        queries.push(q);
      }
    }
  }
  for (const [n, e] of extra.entries()) {
    images.push({ bytes: e.image, path: `extra-${n}.jpg` });
    ids.push(BigInt(900_000 + n));
    names.push(e.species);
    queries.push('extra');
  }
  await writeParquetFile(path.join(root, 'data', 'validation-00000-of-00001.parquet'), {
    image: vectorFromArray(images, imageStruct),
    query: vectorFromArray(queries, new Utf8()),
    inat24_image_id: vectorFromArray(ids, new Int64()),
    inat24_species_name: vectorFromArray(names, new Utf8()),
  });
}

/** A twin/assemble folder's eval split: eval.jsonl + eval.meta.jsonl, positives between images of one instance. */
export async function writeTwinEvalDataset(root: string, instances: number, perInstance: number): Promise<void> {
  const rows: string[] = [];
  const meta: string[] = [];
  for (let i = 0; i < instances; i++) {
    for (let k = 0; k < perInstance; k++) await put(path.join(root, 'images', `i${i}-${k}.jpg`), await picture(i, k));
    for (let k = 0; k < perInstance; k++) {
      rows.push(JSON.stringify({ question: 'q', answer: 'yes', image_1: `images/i${i}-${k}.jpg`, image_2: `images/i${i}-${(k + 1) % perInstance}.jpg` }));
      meta.push(JSON.stringify({ index: meta.length, kind: 'positive', instance_1: `I${i}`, instance_2: `I${i}` }));
    }
  }
  await put(path.join(root, 'eval.jsonl'), rows.join('\n') + '\n');
  await put(path.join(root, 'eval.meta.jsonl'), meta.join('\n') + '\n');
}
