import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';

/** FGVQA query rows and fixture datasets in the sources' own layouts, shared by the build tests. */

export interface Row { id: string; source: string; type: 'pair' | 'multi'; images: string[]; identities: string[]; answer: string; question: string }

export async function writeCub(root: string, species: number, perSpecies: number): Promise<void> {
  await fs.mkdir(root, { recursive: true });
  const images: string[] = [], labels: string[] = [], split: string[] = [], classes: string[] = [];
  let n = 0;
  for (let s = 1; s <= species; s++) {
    classes.push(`${s} ${String(s).padStart(3, '0')}.Species_${s}`);
    for (let k = 0; k < perSpecies + 2; k++) {
      n++;
      images.push(`${n} ${String(s).padStart(3, '0')}.Species_${s}/img_${n}.jpg`);
      labels.push(`${n} ${s}`);
      split.push(`${n} ${k < 2 ? 1 : 0}`);
    }
  }
  for (const [name, lines] of Object.entries({ 'images.txt': images, 'image_class_labels.txt': labels, 'train_test_split.txt': split, 'classes.txt': classes })) {
    await fs.writeFile(path.join(root, name), lines.join('\n') + '\n');
  }
}

export function checkQueries(rows: Row[], pairs: number, multi: number): void {
  const pairRows = rows.filter((r) => r.type === 'pair');
  const multiRows = rows.filter((r) => r.type === 'multi');
  expect(pairRows.filter((r) => r.answer === 'yes')).toHaveLength(pairs / 2);
  expect(pairRows.filter((r) => r.answer === 'no')).toHaveLength(pairs / 2);
  for (const a of ['0', '1', '2', '3']) expect(multiRows.filter((r) => r.answer === a), a).toHaveLength(multi / 4);
  for (const r of rows) {
    expect(new Set(r.images).size, r.id).toBe(r.images.length);
    if (r.type === 'pair') expect(r.identities[0] === r.identities[1], r.id).toBe(r.answer === 'yes');
    else expect(String(r.identities.slice(1).filter((i) => i === r.identities[0]).length), r.id).toBe(r.answer);
    expect(r.question).toMatch(/<answer>/);
  }
  const keys = rows.map((r) => `${r.type}:${r.type === 'pair' ? [...r.images].sort() : [r.images[0], ...r.images.slice(1).sort()]}`);
  expect(new Set(keys).size).toBe(rows.length);
}


/** A small JPEG of one colour (with a little per-image variation), as real image bytes. */
export async function jpeg(r: number, g: number, b: number, size = 24): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } }).jpeg().toBuffer();
}

/** A Parquet file from named Arrow vectors (struct and list columns as in Hugging Face datasets). */
export async function writeParquetFile(file: string, columns: Record<string, import('apache-arrow').Vector>): Promise<void> {
  const { Table, tableToIPC } = await import('apache-arrow');
  const pw = await import('parquet-wasm');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const table = new Table(columns);
  await fs.writeFile(file, pw.writeParquet(pw.Table.fromIPCStream(tableToIPC(table, 'stream'))));
}

/** Four small JPEGs of different colours under `dir`, for queries whose images only need to be real files. */
export async function fourImages(dir: string): Promise<string[]> {
  const { default: sharp } = await import('sharp');
  await fs.mkdir(dir, { recursive: true });
  return Promise.all([0, 1, 2, 3].map(async (k) => {
    const file = path.join(dir, `${k}.jpg`);
    await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 60 * k, g: 100, b: 30 } } }).jpeg().toFile(file);
    return file;
  }));
}
