import os from 'node:os';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import type { Matrix } from '../embed/matrix.js';

const { onnx } = onnxProto;

/**
 * Similarity scores of query rows against every row of a matrix, a block at a time, on
 * onnxruntime's CPU GEMM (MLAS). The matrix lives in the model as an initializer, so each
 * call only moves the query block in and its b x N scores out; the N x N matrix of all
 * scores never exists.
 */
export class Scorer {
  private constructor(private readonly session: ort.InferenceSession, readonly rows: number, readonly dims: number) {}

  static async open(db: Matrix, opts: { threads?: number } = {}): Promise<Scorer> {
    const session = await ort.InferenceSession.create(gemmModel(db), {
      intraOpNumThreads: opts.threads ?? os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new Scorer(session, db.rows, db.dims);
  }

  /** `count` x rows dot products, row-major, for `count` query rows of `dims` floats. */
  async scores(queries: Float32Array, count: number): Promise<Float32Array> {
    if (queries.length !== count * this.dims) throw new RangeError(`expected ${count} x ${this.dims} query floats, got ${queries.length}`);
    const out = await this.session.run({ q: new ort.Tensor('float32', queries, [count, this.dims]) });
    return out.s!.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** s = q x dbᵀ as a single Gemm with the matrix as a constant. */
function gemmModel(db: Matrix): Uint8Array {
  const F = onnx.TensorProto.DataType.FLOAT;
  const data = db.data;
  const graph = onnx.GraphProto.create({
    name: 'scores',
    node: [onnx.NodeProto.create({
      opType: 'Gemm', input: ['q', 'db'], output: ['s'],
      attribute: [onnx.AttributeProto.create({ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
    })],
    initializer: [onnx.TensorProto.create({
      name: 'db', dims: [db.rows, db.dims], dataType: F,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    })],
    input: [onnx.ValueInfoProto.create({ name: 'q', type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'B' }, { dimValue: db.dims }] } } } })],
    output: [onnx.ValueInfoProto.create({ name: 's', type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'B' }, { dimValue: db.rows }] } } } })],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: 'twinflow similarity', graph });
  return onnx.ModelProto.encode(model).finish();
}
