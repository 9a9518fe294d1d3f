import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { Table, tableToIPC, type RecordBatch } from 'apache-arrow';
import * as pw from 'parquet-wasm';

/**
 * A Parquet file written one Arrow record batch at a time, by the Rust `parquet` crate
 * (parquet-wasm). Rows are buffered until a row group of `rowGroupRows` is full (row
 * groups span batches), and each full group goes to disk, so memory holds one row group
 * and one batch, whatever the file's size.
 */
export class ParquetStreamWriter {
  private controller!: ReadableStreamDefaultController<pw.RecordBatch>;
  private pulled?: () => void;
  private readonly done: Promise<void>;
  private failed = false;
  rows = 0;

  private constructor(readonly file: string, rowGroupRows: number) {
    const source = new ReadableStream<pw.RecordBatch>({
      start: (controller) => { this.controller = controller; },
      pull: () => { this.pulled?.(); },
    }, { highWaterMark: 1 });
    const props = new pw.WriterPropertiesBuilder()
      .setCompression(pw.Compression.SNAPPY)
      .setMaxRowGroupSize(rowGroupRows)
      .setCreatedBy('twinflow twin/assemble (parquet-wasm)')
      .build();
    this.done = pw.transformParquetStream(source, props)
      .then((bytes) => bytes.pipeTo(Writable.toWeb(createWriteStream(file)) as WritableStream<Uint8Array>))
      .catch((err: unknown) => { this.failed = true; throw err; });
    this.done.catch(() => undefined); // surfaced by write() and close()
  }

  static open(file: string, rowGroupRows: number): ParquetStreamWriter {
    return new ParquetStreamWriter(file, rowGroupRows);
  }

  /** Hands one batch to the encoder and waits until it has taken it (back-pressure). */
  async write(batch: RecordBatch): Promise<void> {
    if (this.failed) await this.done;
    const table = pw.Table.fromIPCStream(tableToIPC(new Table([batch]), 'stream'));
    for (const b of table.recordBatches()) this.controller.enqueue(b);
    table.free();
    this.rows += batch.numRows;
    while ((this.controller.desiredSize ?? 1) <= 0) {
      await Promise.race([new Promise<void>((resolve) => (this.pulled = resolve)), this.done]);
    }
  }

  async close(): Promise<void> {
    this.controller.close();
    await this.done;
  }

  destroy(): void {
    try { this.controller.error(new Error('parquet writer abandoned')); } catch { /* already closed */ }
  }
}
