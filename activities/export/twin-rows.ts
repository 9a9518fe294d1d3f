import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { KIND_CODES } from '../twin/assemble/rows.js';
import { TextSink } from './text-sink.js';
import { TwinParquetSink, rowsParquetFile } from './twin-parquet.js';

/**
 * Rows in the published Twin shape, one JSON object a line with exactly `question`,
 * `answer` ("yes"/"no"), `image_1`, `image_2` (paths relative to the dataset folder), and
 * beside them `<split>.meta.jsonl`, line for line: `index`, `pair_id`, `kind`,
 * `category`, `instance_1`, `instance_2`. Keeping the extras in their own file leaves the
 * rows loadable by code written for the published release. The same rows, with image
 * bytes, go to `<split>.rows.parquet` for `datasets` (twin-parquet.ts).
 */
export class TwinRowsSink {
  private readonly rows: TextSink;
  private readonly meta: TextSink;
  private readonly parquet: TwinParquetSink;
  private readonly question: string[];
  private readonly path: string[];
  private readonly instance: string[];
  private readonly category: string[];
  private readonly kind: string[];

  constructor(rowsFile: string, metaFile: string, private readonly vocab: Vocabulary, instanceIds: string[]) {
    this.rows = new TextSink(rowsFile);
    this.meta = new TextSink(metaFile);
    this.parquet = new TwinParquetSink(rowsParquetFile(rowsFile), vocab, instanceIds);
    this.question = vocab.questions.map((q) => `{"question":${JSON.stringify(q)},"answer":`);
    this.path = vocab.imagePath.map((p) => JSON.stringify(p));
    this.instance = instanceIds.map((id) => JSON.stringify(id));
    this.category = vocab.categories.map((c) => JSON.stringify(c));
    this.kind = KIND_CODES.map((k) => JSON.stringify(k));
  }

  async write(b: RowBatch): Promise<void> {
    const rows: string[] = new Array(b.length);
    const meta: string[] = new Array(b.length);
    for (let i = 0; i < b.length; i++) {
      const answer = b.answer[i] ? '"yes"' : '"no"';
      rows[i] = `${this.question[b.question[i]!]}${answer},"image_1":${this.path[b.image1[i]!]},"image_2":${this.path[b.image2[i]!]}}\n`;
      meta[i] = `{"index":${b.start + i},"pair_id":"${b.pairId[i]}","kind":${this.kind[b.kind[i]!]},` +
        `"category":${this.category[this.vocab.instanceCategory[b.instance1[i]!]!]},` +
        `"instance_1":${this.instance[b.instance1[i]!]},"instance_2":${this.instance[b.instance2[i]!]}}\n`;
    }
    this.rows.push(rows.join(''));
    this.meta.push(meta.join(''));
    await Promise.all([this.rows.flush(), this.meta.flush(), this.parquet.write(b)]);
  }

  async close(): Promise<string[]> {
    await Promise.all([this.rows.close(), this.meta.close(), this.parquet.close()]);
    return [this.rows.file, this.meta.file, this.parquet.file];
  }

  destroy(): void {
    this.rows.destroy();
    this.meta.destroy();
    this.parquet.destroy();
  }
}
