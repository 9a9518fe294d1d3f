import fs from 'node:fs';
import { tableFromIPC, type Table } from 'apache-arrow';

/**
 * A Parquet file read as Arrow tables of `batchSize` rows, so a file of images never sits
 * in memory whole. parquet-wasm decodes; apache-arrow gives the columns to JavaScript.
 */
export async function* readParquetBatches(file: string, opts: { columns?: string[]; batchSize?: number } = {}): AsyncGenerator<Table> {
  // Loaded here, not when a worker starts (about half a second).
  const pw = await import('parquet-wasm');
  const parquet = await pw.ParquetFile.fromFile(await fs.openAsBlob(file));
  try {
    const stream = await parquet.stream({ batchSize: opts.batchSize ?? 256, ...(opts.columns ? { columns: opts.columns } : {}) });
    for await (const batch of stream as unknown as AsyncIterable<{ intoIPCStream(): Uint8Array }>) {
      yield tableFromIPC(batch.intoIPCStream());
    }
  } finally {
    parquet.free();
  }
}

/** The column names of a Parquet file. */
export async function parquetColumns(file: string): Promise<string[]> {
  for await (const table of readParquetBatches(file, { batchSize: 1 })) return table.schema.fields.map((f) => f.name);
  return [];
}
