import path from 'node:path';
import { Int64, RecordBatch, Schema, Struct, Utf8, makeData, type Data } from 'apache-arrow';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { KIND_CODES, emptyBatch } from '../twin/assemble/rows.js';
import {
  constantUtf8, encodeAll, field, fixedListData, int64, listOf, stringsUtf8, structData, structOf, tableUtf8,
} from './arrow-columns.js';
import { EMBED_ROW_GROUP_ROWS, ImageColumn, chunksOf, imageFiles, imageStruct } from './embedded-images.js';
import { ParquetStreamWriter } from './parquet-stream.js';

/**
 * verl's RL parquet (examples/data_preprocess/geo3k.py, the TWIN variant): a chat prompt
 * with two `<image>` placeholders, the images, `reward_model.ground_truth` for the rule
 * reward and `extra_info` to trace a row back to its pair. Every image is `{bytes, path}`
 * in both image modes (see embedded-images.ts): verl has no setting for a folder that
 * relative paths would be joined to, and opens `bytes` wherever it runs, so the file
 * stands alone. Its bytes come from the store's files in embed mode and from the
 * folder's copies otherwise.
 */

export const VERL_PROMPT_PREFIX = '<image>\n<image>\n\n';

const promptType = structOf([['role', new Utf8()], ['content', new Utf8()]]);
const rewardType = structOf([['style', new Utf8()], ['ground_truth', new Utf8()]]);
const extraType = structOf([
  ['split', new Utf8()], ['index', new Int64()], ['pair_id', new Utf8()], ['kind', new Utf8()],
  ['category', new Utf8()], ['instance_1', new Utf8()], ['instance_2', new Utf8()],
]);

export function verlSchema(): Schema {
  return new Schema([
    field('data_source', new Utf8()),
    field('prompt', listOf(promptType)),
    field('images', listOf(imageStruct)),
    field('ability', new Utf8()),
    field('reward_model', rewardType),
    field('extra_info', extraType),
  ]);
}

/** Everything a batch looks up, encoded once per file. */
interface Tables {
  content: Uint8Array[];
  answers: Uint8Array[];
  kinds: Uint8Array[];
  categories: Uint8Array[];
  instances: Uint8Array[];
  categoryOf: Uint32Array;
}

export class VerlParquetSink {
  private readonly writer: ParquetStreamWriter;
  private readonly schema: Schema;
  private readonly tables: Tables;
  private readonly images: ImageColumn;

  /** `storeFiles`: the store's file of every image (embed mode); otherwise the folder's `images/` copies are read. */
  constructor(readonly file: string, vocab: Vocabulary, instanceIds: string[], storeFiles?: string[], private readonly rowGroupRows = EMBED_ROW_GROUP_ROWS) {
    this.schema = verlSchema();
    this.writer = ParquetStreamWriter.open(file, rowGroupRows);
    this.images = new ImageColumn(vocab, imageFiles(vocab, path.dirname(file), storeFiles));
    this.tables = {
      content: encodeAll(vocab.questions.map((q) => VERL_PROMPT_PREFIX + q)),
      answers: encodeAll(['no', 'yes']),
      kinds: encodeAll([...KIND_CODES]),
      categories: encodeAll(vocab.categories),
      instances: encodeAll(instanceIds),
      categoryOf: vocab.instanceCategory,
    };
  }

  async write(batch: RowBatch): Promise<void> {
    for (const chunk of chunksOf(batch, this.rowGroupRows)) await this.writeChunk(chunk);
  }

  private async writeChunk(batch: RowBatch): Promise<void> {
    const n = batch.length;
    const t = this.tables;
    const prompt = structData(promptType, [constantUtf8('user', n), tableUtf8(t.content, batch.question, n)], n);
    const reward = structData(rewardType, [constantUtf8('rule', n), tableUtf8(t.answers, batch.answer, n)], n);
    const index = new BigInt64Array(n);
    for (let i = 0; i < n; i++) index[i] = BigInt(batch.start + i);
    const category = new Uint32Array(n);
    for (let i = 0; i < n; i++) category[i] = t.categoryOf[batch.instance1[i]!]!;
    const extra = structData(extraType, [
      constantUtf8(batch.split, n), int64(index), stringsUtf8(batch.pairId, n), tableUtf8(t.kinds, batch.kind, n),
      tableUtf8(t.categories, category, n), tableUtf8(t.instances, batch.instance1, n), tableUtf8(t.instances, batch.instance2, n),
    ], n);
    const children = [
      constantUtf8('twin', n), fixedListData(this.schema.fields[1]!.type, prompt, n, 1),
      fixedListData(this.schema.fields[2]!.type, await this.imagesOf(batch), n, 2), constantUtf8('vision', n), reward, extra,
    ];
    await this.writer.write(new RecordBatch(this.schema, makeData({ type: new Struct(this.schema.fields), length: n, nullCount: 0, children })));
  }

  /** Two image structs per row, image_1 then image_2. */
  private async imagesOf(batch: RowBatch): Promise<Data> {
    const n = batch.length;
    const order = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      order[2 * i] = batch.image1[i]!;
      order[2 * i + 1] = batch.image2[i]!;
    }
    return (await this.images.data(order))[0]!;
  }

  async close(): Promise<string> {
    if (this.writer.rows === 0) {
      // An empty split still gets a valid file with the schema: a zero-row batch carries it.
      await this.writeChunk(emptyBatch('train', 0));
    }
    await this.writer.close();
    return this.file;
  }

  destroy(): void {
    this.writer.destroy();
  }
}
