import os from 'node:os';
import { CancelledFailure } from '@temporalio/common';
import * as ort from 'onnxruntime-node';
import type { Matrix } from '../embed/matrix.js';
import type { RowBlock } from './blocks.js';
import { similarityModel, type GraphOutput } from './graph.js';

/** What every similarity search accepts (see activities/embed/topk.ts). */
export interface SimilarityOptions {
  /**
   * Query rows per onnxruntime run.
   * @default as many as keep one block of scores near 64 MiB, between 16 and 512
   */
  blockRows?: number;
  /** onnxruntime intra-op threads. @default os.availableParallelism() */
  threads?: number;
  /** Checked between blocks; an aborted signal stops the search with a CancelledFailure. */
  signal?: AbortSignal;
  /** Called after every block with the query rows done so far. */
  onProgress?: (doneRows: number, totalRows: number) => void;
  /**
   * Sessions to reuse across searches, e.g. one search per category: opening one costs
   * 5-10 ms, more than scoring a small group. The caller releases the pool.
   */
  sessions?: SessionPool;
}

/** onnxruntime sessions of the similarity graphs, one per graph and thread count, kept until released. */
export class SessionPool {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  get(dims: number, output: GraphOutput, threads: number): Promise<ort.InferenceSession> {
    const key = `${dims}:${output}:${threads}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = openSession(dims, output, threads);
      this.sessions.set(key, session);
    }
    return session;
  }

  async release(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(open.map(async (session) => (await session).release()));
  }
}

function openSession(dims: number, output: GraphOutput, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(similarityModel(dims, output), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

const BLOCK_BYTES = 64 * 1024 * 1024;

/** One onnxruntime session of a similarity graph, run block by block over the query rows. */
export class Searcher {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly queries: Matrix,
    private readonly database: Matrix,
    readonly blockRows: number,
    private readonly opts: SimilarityOptions,
  ) {}

  static async open(queries: Matrix, database: Matrix, output: GraphOutput, opts: SimilarityOptions): Promise<Searcher> {
    if (!(queries.dims >= 1)) throw new RangeError(`rows have ${queries.dims} dims; an embedding needs at least 1`);
    if (queries.dims !== database.dims) {
      throw new RangeError(`query rows have ${queries.dims} dims but database rows have ${database.dims}; both must come from the same encoder`);
    }
    const blockRows = opts.blockRows ?? Math.min(512, Math.max(16, Math.floor(BLOCK_BYTES / 4 / Math.max(1, database.rows))));
    const threads = opts.threads ?? os.availableParallelism();
    const session = await (opts.sessions ? opts.sessions.get(database.dims, output, threads) : openSession(database.dims, output, threads));
    return new Searcher(session, queries, database, blockRows, opts);
  }

  async forEachBlock(blocks: RowBlock[], body: (block: RowBlock) => Promise<void>): Promise<void> {
    for (const block of blocks) {
      if (this.opts.signal?.aborted) throw new CancelledFailure('similarity search cancelled');
      await body(block);
      this.opts.onProgress?.(block.end, this.queries.rows);
    }
  }

  /** Database rows [from, to) as a tensor over the same memory (never empty: kernels divide by the extent). */
  databaseRows(from: number, to = this.database.rows): ort.Tensor {
    const d = this.database.dims;
    return new ort.Tensor('float32', this.database.data.subarray(from * d, to * d), [to - from, d]);
  }

  /** The block's query rows as `q`, with the other inputs (database rows among them) in `feeds`. */
  run(block: RowBlock, feeds: Record<string, ort.Tensor>, fetches?: ort.InferenceSession.FetchesType): Promise<ort.InferenceSession.ReturnType> {
    const d = this.queries.dims;
    const q = new ort.Tensor('float32', this.queries.data.subarray(block.start * d, block.end * d), [block.end - block.start, d]);
    return fetches ? this.session.run({ q, ...feeds }, fetches) : this.session.run({ q, ...feeds });
  }

  /** Releases the session unless it belongs to a pool. */
  async release(): Promise<void> {
    if (!this.opts.sessions) await this.session.release();
  }
}

export const int64 = (value: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);

/**
 * An int64 tensor's values as int32 pairs (little-endian: the low word first). Indices here
 * are below 2^31, and reading BigInts one by one costs more than the search's own selection.
 */
export function lowWords(tensor: ort.Tensor): Int32Array {
  const data = tensor.data as BigInt64Array;
  if (os.endianness() === 'LE') return new Int32Array(data.buffer, data.byteOffset, data.length * 2);
  const out = new Int32Array(data.length * 2);
  data.forEach((v, i) => { out[2 * i] = Number(v); });
  return out;
}
