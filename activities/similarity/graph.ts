import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/**
 * What a similarity graph returns for a block of query rows `q` (b x dims):
 * - `scores`: `scores = q x dbᵀ`, the b x M block of dot products with database rows `db`.
 * - `topk`: the k best of each row of that block (`values`, `indices`), so only b x k
 *   numbers leave onnxruntime.
 * - `both`: `topk`, plus the `kc` best of each column (`columnValues`, `columnIndices`,
 *   M x kc, indices into the block's rows), for a self search that scores each pair once.
 */
export type GraphOutput = 'scores' | 'topk' | 'both';

const valueInfo = (name: string, shape: (number | string)[], elemType = FLOAT) =>
  onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
const intAttr = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const op = (opType: string, input: string[], output: string[], attribute: ReturnType<typeof intAttr>[] = []) =>
  onnx.NodeProto.create({ name: output[0], opType, input, output, attribute });
/** `out = a x bᵀ`: Gemm reads the database row-major as it is stored, no transposed copy. */
const gemm = (a: string, b: string, out: string) => op('Gemm', [a, b], [out], [intAttr('transB', 1)]);
/** Largest first; ONNX breaks ties by the lower index, the order `topk` promises. */
const topK = (input: string, k: string, values: string, indices: string) => op('TopK', [input, k], [values, indices], [intAttr('axis', 1)]);
/**
 * `out = inᵀ`. A column's best go through a transposed copy and TopK on its rows: measured
 * at Twin scale, TopK along axis 0 of the block (strided reads) cost more than the copy.
 */
const transpose = (input: string, out: string) =>
  onnx.NodeProto.create({ name: out, opType: 'Transpose', input: [input], output: [out], attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] })] });

/**
 * The database is always an input rather than a constant, so that a block can be scored
 * against any contiguous run of its rows without a copy (and no 2 GiB protobuf limit
 * applies); measured at Twin scale, a constant packed once saved no time overall.
 */
export function similarityModel(dims: number, output: GraphOutput): Uint8Array {
  const input = [valueInfo('q', ['b', dims]), valueInfo('db', ['m', dims])];
  const node = [gemm('q', 'db', 'scores')];
  let out = [valueInfo('scores', ['b', 'm'])];
  if (output !== 'scores') {
    input.push(valueInfo('k', [1], INT64));
    node.push(topK('scores', 'k', 'values', 'indices'));
    out = [valueInfo('values', ['b', 'k']), valueInfo('indices', ['b', 'k'], INT64)];
  }
  if (output === 'both') {
    input.push(valueInfo('kc', [1], INT64));
    node.push(transpose('scores', 'columns'), topK('columns', 'kc', 'columnValues', 'columnIndices'));
    out.push(valueInfo('columnValues', ['m', 'kc']), valueInfo('columnIndices', ['m', 'kc'], INT64));
  }
  const graph = onnx.GraphProto.create({ name: `similarity-${output}`, node, input, output: out });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: 'twinflow topk', graph });
  return onnx.ModelProto.encode(model).finish();
}
