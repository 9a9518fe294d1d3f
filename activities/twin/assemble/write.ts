import path from 'node:path';
import { CancelledFailure } from '@temporalio/activity';
import type { AssembleExport } from '../../../engine/kinds/assemble.js';
import { ShareGptSink } from '../../export/sharegpt.js';
import type { RowTally } from '../../export/stats.js';
import { TwinRowsSink } from '../../export/twin-rows.js';
import { VerlParquetSink } from '../../export/verl-parquet.js';
import type { QuerySpace, SplitPlan } from './plan.js';
import { emptyBatch, fillBatch, type RowBatch, type Vocabulary } from './rows.js';

/** Writing one split's rows to every requested export in one pass over its ordered ids. */

interface Sink {
  write(batch: RowBatch): Promise<void>;
  close(): Promise<string | string[]>;
  destroy(): void;
}

export interface WriteContext {
  dir: string;
  vocab: Vocabulary;
  instanceIds: string[];
  exports: readonly AssembleExport[];
  /** Store files by global image, in embed mode: their bytes go into the parquet. */
  embedFiles?: string[];
  /** Rows per batch, and so per parquet row group. */
  batchRows: number;
  tally: RowTally;
  signal: AbortSignal;
  onRows: (rows: number) => void;
}

function openSinks(split: string, ctx: WriteContext): Sink[] {
  const file = (name: string) => path.join(ctx.dir, name);
  const sinks: Sink[] = [];
  if (ctx.exports.includes('rows')) sinks.push(new TwinRowsSink(file(`${split}.jsonl`), file(`${split}.meta.jsonl`), ctx.vocab, ctx.instanceIds));
  if (ctx.exports.includes('verl')) sinks.push(new VerlParquetSink(file(`${split}.parquet`), ctx.vocab, ctx.instanceIds, ctx.embedFiles));
  if (ctx.exports.includes('sharegpt')) sinks.push(new ShareGptSink(file(`${split}.sharegpt.json`), ctx.vocab));
  return sinks;
}

/** Writes the rows of `order` (ids of `plan.space`) and returns the files, by name in the folder. */
export async function writeSplit(plan: SplitPlan, order: Uint32Array, ctx: WriteContext): Promise<string[]> {
  const sinks = openSinks(plan.name, ctx);
  const batch = emptyBatch(plan.name, ctx.batchRows);
  try {
    for (let start = 0; start < order.length; start += ctx.batchRows) {
      if (ctx.signal.aborted) throw new CancelledFailure('twin/assemble cancelled');
      fillBatch(batch, order, start, Math.min(ctx.batchRows, order.length - start), plan.space, plan.global, ctx.vocab);
      ctx.tally.observe(batch);
      for (const sink of sinks) await sink.write(batch);
      ctx.onRows(batch.length);
    }
    const files: string[] = [];
    for (const sink of sinks) files.push(...[await sink.close()].flat());
    return files.map((f) => path.basename(f));
  } catch (err) {
    for (const sink of sinks) sink.destroy();
    throw err;
  }
}

/** Marks every image some row of `order` shows (1 = used), without making the rows. */
export function markUsed(space: QuerySpace, order: Uint32Array, marks: Uint8Array): Uint8Array {
  const q = { kind: 'positive' as const, instance1: 0, instance2: 0, image1: 0, image2: 0 };
  for (const id of order) {
    space.decode(id, q);
    marks[q.image1] = 1;
    marks[q.image2] = 1;
  }
  return marks;
}
