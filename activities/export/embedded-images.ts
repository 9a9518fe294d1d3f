import fs from 'node:fs/promises';
import path from 'node:path';
import { Binary, Field, Struct, Utf8, type Data } from 'apache-arrow';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { VarColumn, encodeAll, structData, tableUtf8 } from './arrow-columns.js';

/**
 * Image bytes inside Parquet rows. A Parquet file is read by tools that know nothing of
 * the folder it came in (`datasets`' parquet builder, verl's RLHFDataset): a relative path
 * in it would resolve against the reader's working directory, and an absolute one only on
 * the host that wrote it. So each image is `{bytes, path}`, the Hugging Face `Image`
 * layout, which verl's `process_image` opens from `bytes`; `path` only names the image
 * (`images/<sha256>.<ext>`, the copy beside the rows when the folder has one).
 */

/** Nullable children, as `datasets.Image().pa_type` has them: `datasets` takes a column for an Image only if its type is exactly that. */
export const imageStruct = new Struct([new Field('bytes', new Binary(), true), new Field('path', new Utf8(), true)]);

/**
 * Rows per Parquet row group (and per record batch) in files that hold image bytes: about
 * 30 MB for two 60 KB images a row, what a reader decodes at once. `datasets` writes 100.
 */
export const EMBED_ROW_GROUP_ROWS = 256;

/** Where an image's bytes are read from: the store's files (embed mode) or the folder's copies. */
export function imageFiles(vocab: Vocabulary, folder: string, storeFiles?: readonly string[]): (image: number) => string {
  return storeFiles ? (image) => storeFiles[image]! : (image) => path.join(folder, vocab.imagePath[image]!);
}

/**
 * Image bytes read lately, least recently used out first. One per vocabulary, so one per
 * assemble run, shared by its sinks: the rows and verl files show the same images, batch
 * after batch, and a Twin image appears in about 40 rows.
 */
class RecentBytes {
  private readonly map = new Map<number, Buffer>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(image: number): Buffer | undefined {
    const hit = this.map.get(image);
    if (hit) {
      this.map.delete(image);
      this.map.set(image, hit);
    }
    return hit;
  }

  set(image: number, value: Buffer): void {
    if (value.length > this.budget || this.map.has(image)) return;
    this.map.set(image, value);
    this.bytes += value.length;
    for (const [old, bytes] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(old);
      this.bytes -= bytes.length;
    }
  }
}

const RECENT_BYTES = 128 * 1024 * 1024;
const recentByVocab = new WeakMap<Vocabulary, RecentBytes>();

export class ImageColumn {
  private readonly paths: Uint8Array[];
  private readonly recent: RecentBytes;

  constructor(vocab: Vocabulary, private readonly fileOf: (image: number) => string) {
    this.paths = encodeAll(vocab.imagePath);
    let recent = recentByVocab.get(vocab);
    if (!recent) recentByVocab.set(vocab, (recent = new RecentBytes(RECENT_BYTES)));
    this.recent = recent;
  }

  /** For each of `orders` (global image numbers), one `{bytes, path}` struct per entry; each image is read once. */
  async data(...orders: Uint32Array[]): Promise<Data[]> {
    const bytesOf = new Map<number, Buffer>();
    const missing = new Set<number>();
    for (const order of orders) {
      for (const image of order) {
        if (bytesOf.has(image) || missing.has(image)) continue;
        const hit = this.recent.get(image);
        if (hit) bytesOf.set(image, hit);
        else missing.add(image);
      }
    }
    await Promise.all([...missing].map(async (image) => {
      const bytes = await fs.readFile(this.fileOf(image));
      bytesOf.set(image, bytes);
      this.recent.set(image, bytes);
    }));
    return orders.map((order) => {
      const n = order.length;
      let total = 0;
      for (const image of order) total += bytesOf.get(image)!.length;
      const bytes = new VarColumn(new Binary(), n, total);
      for (const image of order) bytes.pushBytes(bytesOf.get(image)!);
      return structData(imageStruct, [bytes.data(), tableUtf8(this.paths, order, n)], n);
    });
  }
}

/** Rows [from, to) of a batch, as views (no copy). */
export function sliceBatch(b: RowBatch, from: number, to: number): RowBatch {
  return {
    split: b.split, start: b.start + from, length: to - from, kind: b.kind.subarray(from, to), answer: b.answer.subarray(from, to),
    image1: b.image1.subarray(from, to), image2: b.image2.subarray(from, to), instance1: b.instance1.subarray(from, to),
    instance2: b.instance2.subarray(from, to), question: b.question.subarray(from, to), pairId: b.pairId.slice(from, to),
  };
}

/** A batch in runs of at most `rows` rows, so a file of image bytes is built a row group at a time. */
export function* chunksOf(b: RowBatch, rows: number): Generator<RowBatch> {
  for (let from = 0; from < b.length; from += rows) yield sliceBatch(b, from, Math.min(b.length, from + rows));
}
