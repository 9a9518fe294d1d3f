import fs from 'node:fs';
import { Binary, Int64, RecordBatch, Schema, Struct, Utf8, makeData, type Data } from 'apache-arrow';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { KIND_CODES, emptyBatch } from '../twin/assemble/rows.js';
import {
  VarColumn, constantUtf8, encodeAll, field, fixedListData, int64, listOf, stringsUtf8, structData, structOf, tableUtf8,
} from './arrow-columns.js';
import { ParquetStreamWriter } from './parquet-stream.js';

/**
 * verl's RL parquet (examples/data_preprocess/geo3k.py, the TWIN variant): a chat prompt
 * with two `<image>` placeholders, the images, `reward_model.ground_truth` for the rule
 * reward and `extra_info` to trace a row back to its pair. In folder mode an image is
 * `{image: relative path}` (qwen_vl_utils opens it from the working directory, so run
 * verl from the dataset folder or rewrite the prefix); in embed mode it is
 * `{bytes, path}`, the Hugging Face Image layout, and the file stands alone.
 */

export const VERL_PROMPT_PREFIX = '<image>\n<image>\n\n';

const promptType = structOf([['role', new Utf8()], ['content', new Utf8()]]);
const folderImage = structOf([['image', new Utf8()]]);
const embedImage = structOf([['bytes', new Binary()], ['path', new Utf8()]]);
const rewardType = structOf([['style', new Utf8()], ['ground_truth', new Utf8()]]);
const extraType = structOf([
  ['split', new Utf8()], ['index', new Int64()], ['pair_id', new Utf8()], ['kind', new Utf8()],
  ['category', new Utf8()], ['instance_1', new Utf8()], ['instance_2', new Utf8()],
]);

export function verlSchema(embed: boolean): Schema {
  return new Schema([
    field('data_source', new Utf8()),
    field('prompt', listOf(promptType)),
    field('images', listOf(embed ? embedImage : folderImage)),
    field('ability', new Utf8()),
    field('reward_model', rewardType),
    field('extra_info', extraType),
  ]);
}

/** Everything a batch looks up, encoded once per file. */
interface Tables {
  content: Uint8Array[];
  paths: Uint8Array[];
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

  constructor(readonly file: string, vocab: Vocabulary, instanceIds: string[], private readonly embedFiles?: string[], rowGroupRows = 10_000) {
    this.schema = verlSchema(embedFiles !== undefined);
    this.writer = ParquetStreamWriter.open(file, rowGroupRows);
    this.tables = {
      content: encodeAll(vocab.questions.map((q) => VERL_PROMPT_PREFIX + q)),
      paths: encodeAll(vocab.imagePath),
      answers: encodeAll(['no', 'yes']),
      kinds: encodeAll([...KIND_CODES]),
      categories: encodeAll(vocab.categories),
      instances: encodeAll(instanceIds),
      categoryOf: vocab.instanceCategory,
    };
  }

  async write(batch: RowBatch): Promise<void> {
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
      fixedListData(this.schema.fields[2]!.type, this.images(batch), n, 2), constantUtf8('vision', n), reward, extra,
    ];
    await this.writer.write(new RecordBatch(this.schema, makeData({ type: new Struct(this.schema.fields), length: n, nullCount: 0, children })));
  }

  /** Two image structs per row, image_1 then image_2. */
  private images(batch: RowBatch): Data {
    const n = batch.length;
    const order = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      order[2 * i] = batch.image1[i]!;
      order[2 * i + 1] = batch.image2[i]!;
    }
    const paths = tableUtf8(this.tables.paths, order, 2 * n);
    if (!this.embedFiles) return structData(folderImage, [paths], 2 * n);
    const bytes = new VarColumn(new Binary(), 2 * n, 2 * n * 32_768);
    for (const image of order) bytes.pushBytes(fs.readFileSync(this.embedFiles[image]!));
    return structData(embedImage, [bytes.data(), paths], 2 * n);
  }

  async close(): Promise<string> {
    if (this.writer.rows === 0) {
      // An empty split still gets a valid file with the schema: a zero-row batch carries it.
      await this.write(emptyBatch('train', 0));
    }
    await this.writer.close();
    return this.file;
  }

  destroy(): void {
    this.writer.destroy();
  }
}
