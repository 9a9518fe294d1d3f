import path from 'node:path';
import { Field, Int64, RecordBatch, Schema, Struct, Utf8, makeData } from 'apache-arrow';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { KIND_CODES, emptyBatch } from '../twin/assemble/rows.js';
import { encodeAll, int64, stringsUtf8, tableUtf8 } from './arrow-columns.js';
import { EMBED_ROW_GROUP_ROWS, ImageColumn, chunksOf, imageFiles, imageStruct } from './embedded-images.js';
import { ParquetStreamWriter } from './parquet-stream.js';

/**
 * The Twin rows as Parquet, for `datasets.load_dataset(<folder>)`: the published columns
 * `question`, `answer`, `image_1`, `image_2`, then the meta columns of `<split>.meta.jsonl`.
 * The JSONL rows can not be a config of the dataset card beside the verl parquet
 * (`datasets` reads every config of a card with the builder of its first one), and in a
 * Parquet file an image path has no folder to be relative to, so the images are their
 * bytes (embedded-images.ts). The schema says so to `datasets` (the `huggingface` schema
 * metadata), which then decodes `image_1` and `image_2` to PIL images.
 */

const COLUMNS: Array<[string, 'string' | 'int64' | 'image']> = [
  ['question', 'string'], ['answer', 'string'], ['image_1', 'image'], ['image_2', 'image'],
  ['index', 'int64'], ['pair_id', 'string'], ['kind', 'string'], ['category', 'string'], ['instance_1', 'string'], ['instance_2', 'string'],
];

/** The `datasets` features of the columns, as `Features.to_dict()` writes them. */
const FEATURES = Object.fromEntries(COLUMNS.map(([name, type]) => [name, type === 'image' ? { _type: 'Image' } : { dtype: type, _type: 'Value' }]));

/** Nullable fields, as `datasets` makes them from FEATURES: it reads a column as its feature only when the types match exactly. */
export function twinParquetSchema(): Schema {
  const types = { string: new Utf8(), int64: new Int64(), image: imageStruct };
  const fields = COLUMNS.map(([name, type]) => new Field(name, types[type], true));
  return new Schema(fields, new Map([['huggingface', JSON.stringify({ info: { features: FEATURES } })]]));
}

/** `train.jsonl` -> `train.rows.parquet`, beside it. */
export const rowsParquetFile = (rowsFile: string) => path.join(path.dirname(rowsFile), `${path.basename(rowsFile, '.jsonl')}.rows.parquet`);

export class TwinParquetSink {
  private readonly writer: ParquetStreamWriter;
  private readonly schema = twinParquetSchema();
  private readonly images: ImageColumn;
  private readonly questions: Uint8Array[];
  private readonly answers = encodeAll(['no', 'yes']);
  private readonly kinds = encodeAll([...KIND_CODES]);
  private readonly categories: Uint8Array[];
  private readonly instances: Uint8Array[];

  /** Reads each image from the folder's `images/` copy (the Twin rows always come with the folder). */
  constructor(readonly file: string, private readonly vocab: Vocabulary, instanceIds: string[], private readonly rowGroupRows = EMBED_ROW_GROUP_ROWS) {
    this.writer = ParquetStreamWriter.open(file, rowGroupRows);
    this.images = new ImageColumn(vocab, imageFiles(vocab, path.dirname(file)));
    this.questions = encodeAll(vocab.questions);
    this.categories = encodeAll(vocab.categories);
    this.instances = encodeAll(instanceIds);
  }

  async write(batch: RowBatch): Promise<void> {
    for (const chunk of chunksOf(batch, this.rowGroupRows)) await this.writeChunk(chunk);
  }

  private async writeChunk(b: RowBatch): Promise<void> {
    const n = b.length;
    const index = new BigInt64Array(n);
    for (let i = 0; i < n; i++) index[i] = BigInt(b.start + i);
    const category = new Uint32Array(n);
    for (let i = 0; i < n; i++) category[i] = this.vocab.instanceCategory[b.instance1[i]!]!;
    const [image1, image2] = await this.images.data(b.image1, b.image2);
    const children = [
      tableUtf8(this.questions, b.question, n), tableUtf8(this.answers, b.answer, n), image1!, image2!,
      int64(index), stringsUtf8(b.pairId, n), tableUtf8(this.kinds, b.kind, n), tableUtf8(this.categories, category, n),
      tableUtf8(this.instances, b.instance1, n), tableUtf8(this.instances, b.instance2, n),
    ];
    await this.writer.write(new RecordBatch(this.schema, makeData({ type: new Struct(this.schema.fields), length: n, nullCount: 0, children })));
  }

  async close(): Promise<string> {
    // An empty split still gets a valid file with the schema: a zero-row batch carries it.
    if (this.writer.rows === 0) await this.writeChunk(emptyBatch('train', 0));
    await this.writer.close();
    return this.file;
  }

  destroy(): void {
    this.writer.destroy();
  }
}
