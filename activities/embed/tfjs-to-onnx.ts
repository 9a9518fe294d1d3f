import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** An attribute value as the TF.js converter writes it (a JSON form of TF's AttrValue proto). */
export interface TfjsAttr {
  i?: string;
  f?: number;
  b?: boolean;
  /** Base64 bytes, e.g. 'U0FNRQ==' for 'SAME'. */
  s?: string;
  type?: string;
  list?: { i?: string[]; s?: string[]; f?: number[] };
  shape?: { dim?: { size: string }[] };
}

export interface TfjsNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfjsAttr>;
}

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number };
}

/** The `model.json` of a TF.js graph model (only the parts the converter reads). */
export interface TfjsGraphModelJson {
  format?: string;
  modelTopology: { node: TfjsNode[] };
  weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
}

export interface ConvertOptions {
  modelJson: TfjsGraphModelJson;
  /** The shards' bytes concatenated in `weightsManifest` order (groups, then paths). */
  weights: Uint8Array;
  /** The TF node whose value becomes the ONNX output, e.g. `.../feature_vector/SpatialSqueeze`. */
  outputNode: string;
  /** NHWC shape of the graph input; -1 or a string is a symbolic dimension. @default the Placeholder's own shape */
  inputShape?: (number | string)[];
  /** @default 'embedding' */
  outputName?: string;
}

/** Thrown when the graph uses an op, attribute value or weight encoding the converter does not handle. */
export class TfjsConversionError extends Error {
  override name = 'TfjsConversionError';
}

type Tensor = { dims: number[]; data: Float32Array };
type OnnxNode = InstanceType<typeof onnx.NodeProto>;
type OnnxTensor = InstanceType<typeof onnx.TensorProto>;

/** NHWC axis -> NCHW axis; rank-4 values are kept NCHW inside the ONNX graph. */
const NHWC_TO_NCHW = [0, 2, 3, 1];
const SUPPORTED_FUSED = new Set(['BiasAdd', 'Relu', 'Relu6']);

const decodeS = (s: string): string => Buffer.from(s, 'base64').toString('utf8');
const ints = (a: TfjsAttr | undefined): number[] => (a?.list?.i ?? []).map(Number);
const strs = (a: TfjsAttr | undefined): string[] => (a?.list?.s ?? []).map(decodeS);

/** Dequantizes every weight in manifest order; TF.js stores `q * scale + min` for uint8/uint16. */
export function decodeWeights(json: TfjsGraphModelJson, bytes: Uint8Array): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (const spec of json.weightsManifest.flatMap((g) => g.weights)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const q = spec.quantization;
    if (spec.dtype !== 'float32') throw new TfjsConversionError(`weight ${spec.name}: dtype ${spec.dtype} is not supported (float32 only)`);
    if (q && (q.dtype === 'uint8' || q.dtype === 'uint16') && q.scale !== undefined && q.min !== undefined) {
      const wide = q.dtype === 'uint16';
      for (let i = 0; i < n; i++) data[i] = (wide ? view.getUint16(offset + 2 * i, true) : view.getUint8(offset + i)) * q.scale + q.min;
      offset += n * (wide ? 2 : 1);
    } else if (!q) {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(offset + 4 * i, true);
      offset += 4 * n;
    } else {
      throw new TfjsConversionError(`weight ${spec.name}: quantization ${JSON.stringify(q)} is not supported`);
    }
    out.set(spec.name, { dims: spec.shape, data });
  }
  if (offset !== bytes.byteLength) throw new TfjsConversionError(`weights: manifest describes ${offset} bytes but ${bytes.byteLength} were given`);
  return out;
}

/** Reorders a dense tensor's axes (`perm[k]` = source axis of output axis k). */
function transpose(t: Tensor, perm: number[]): Tensor {
  const dims = perm.map((p) => t.dims[p] ?? 0);
  const srcStrides = t.dims.map((_, i) => t.dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const data = new Float32Array(t.data.length);
  const idx = new Array<number>(dims.length).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let k = 0; k < dims.length; k++) src += (idx[k] ?? 0) * (srcStrides[perm[k] ?? 0] ?? 0);
    data[o] = t.data[src] ?? 0;
    for (let k = dims.length - 1; k >= 0; k--) {
      idx[k] = (idx[k] ?? 0) + 1;
      if ((idx[k] ?? 0) < (dims[k] ?? 0)) break;
      idx[k] = 0;
    }
  }
  return { dims, data };
}

const floatInit = (name: string, t: Tensor): OnnxTensor =>
  onnx.TensorProto.create({
    name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice(),
  });
const int64Init = (name: string, values: number[]): OnnxTensor =>
  onnx.TensorProto.create({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
const intsAttr = (name: string, v: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
const intAttr = (name: string, v: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });
const strAttr = (name: string, v: string) =>
  onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) });

/** Converts the subgraph that `outputNode` depends on; rank-4 values are NCHW inside, NHWC at the input. */
export function convertTfjsGraphToOnnx(opts: ConvertOptions): Uint8Array {
  const byName = new Map(opts.modelJson.modelTopology.node.map((n) => [n.name, n]));
  const weights = decodeWeights(opts.modelJson, opts.weights);
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const rank = new Map<string, number>();
  const done = new Set<string>();
  const inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  const outputName = opts.outputName ?? 'embedding';

  const constOf = (name: string): Tensor => {
    const t = weights.get(name);
    if (!t) throw new TfjsConversionError(`Const ${name} has no entry in weightsManifest`);
    return t;
  };
  const initDims = new Map<string, string>();
  /** Adds an initializer once; a Const read in two layouts would need two names, which no supported graph does. */
  const addInit = (name: string, t: Tensor): string => {
    const dims = t.dims.join(',');
    const seen = initDims.get(name);
    if (seen === undefined) { initDims.set(name, dims); inits.push(floatInit(name, t)); }
    else if (seen !== dims) throw new TfjsConversionError(`Const ${name} is used with shapes [${seen}] and [${dims}]`);
    return name;
  };
  const node = (op: string, ins: string[], out: string, attrs: ReturnType<typeof intAttr>[] = []) =>
    nodes.push(onnx.NodeProto.create({ name: out, opType: op, input: ins, output: [out], attribute: attrs }));
  const valueInfo = (name: string, shape: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: shape.map((d) => (typeof d === 'number' && d >= 0 ? { dimValue: d } : { dimParam: typeof d === 'string' ? d : 'N' })) } } },
    });

  const convAttrs = (n: TfjsNode): ReturnType<typeof intAttr>[] => {
    const fmt = n.attr?.data_format?.s ? decodeS(n.attr.data_format.s) : 'NHWC';
    if (fmt !== 'NHWC') throw new TfjsConversionError(`${n.op} ${n.name}: data_format ${fmt} is not supported (NHWC only)`);
    const st = ints(n.attr?.strides);
    const dil = ints(n.attr?.dilations);
    const attrs = [intsAttr('strides', [st[1] ?? 1, st[2] ?? 1])];
    if (dil.length) attrs.push(intsAttr('dilations', [dil[1] ?? 1, dil[2] ?? 1]));
    if (n.attr?.ksize) { const k = ints(n.attr.ksize); attrs.push(intsAttr('kernel_shape', [k[1] ?? 1, k[2] ?? 1])); }
    const padding = n.attr?.padding?.s ? decodeS(n.attr.padding.s) : 'VALID';
    if (padding === 'SAME') attrs.push(strAttr('auto_pad', 'SAME_UPPER'));
    else if (padding === 'VALID') attrs.push(strAttr('auto_pad', 'VALID'));
    else if (padding === 'EXPLICIT') { const p = ints(n.attr?.explicit_paddings); attrs.push(intsAttr('pads', [p[2] ?? 0, p[4] ?? 0, p[3] ?? 0, p[5] ?? 0])); }
    else throw new TfjsConversionError(`${n.op} ${n.name}: padding ${padding} is not supported`);
    return attrs;
  };

  const fusedConv = (n: TfjsNode, tfIns: string[], x: string, depthwise: boolean) => {
    const fused = strs(n.attr?.fused_ops);
    const bad = fused.filter((f) => !SUPPORTED_FUSED.has(f));
    if (bad.length || fused[0] !== 'BiasAdd') throw new TfjsConversionError(`${n.op} ${n.name}: fused_ops [${fused.join(', ')}] not supported (need BiasAdd, then optionally Relu or Relu6)`);
    const [, wName = '', bName = ''] = tfIns;
    const w = constOf(wName);
    // HWIO -> OIHW; depthwise HWCM -> (C*M)1HW with group=C (TF orders output channels c*M+m, as ONNX does).
    const [kh = 1, kw = 1, c = 1, m = 1] = w.dims;
    const wt = depthwise ? { dims: [c * m, 1, kh, kw], data: transpose(w, [2, 3, 0, 1]).data } : transpose(w, [3, 2, 0, 1]);
    const attrs = convAttrs(n);
    if (depthwise) attrs.push(intAttr('group', c));
    const act = fused[1];
    const convOut = act ? `${n.name}/conv` : n.name;
    node('Conv', [x, addInit(`${wName}/onnx`, wt), addInit(bName, constOf(bName))], convOut, attrs);
    if (act === 'Relu') node('Relu', [convOut], n.name);
    if (act === 'Relu6') {
      const lo = addInit('relu6/min', { dims: [], data: new Float32Array([0]) });
      node('Clip', [convOut, lo, addInit('relu6/max', { dims: [], data: new Float32Array([6]) })], n.name);
    }
    rank.set(n.name, 4);
  };

  /** An elementwise operand: a Const becomes an initializer, reshaped so a per-channel vector broadcasts over NCHW. */
  const operand = (name: string, otherRank: number): string => {
    const src = byName.get(name);
    if (src?.op !== 'Const') return name;
    const t = constOf(name);
    if (t.data.length === 1) return addInit(name, { dims: [], data: t.data });
    if (t.dims.length === 1 && otherRank === 4) return addInit(name, { dims: [t.data.length, 1, 1], data: t.data });
    if (otherRank !== 4) return addInit(name, t);
    throw new TfjsConversionError(`Const ${name}: shape [${t.dims.join(',')}] cannot be broadcast in NCHW layout`);
  };

  // Consumers read a Placeholder's NCHW copy, so ONNX value names differ from TF names there.
  const valueOf = (name: string): string => (byName.get(name)?.op === 'Placeholder' ? `${name}/nchw` : name);

  const emit = (n: TfjsNode, tfIns: string[]): void => {
    const ins = tfIns.map(valueOf);
    const x = ins[0] ?? '';
    switch (n.op) {
      case 'Placeholder': {
        const dims = n.attr?.shape?.shape?.dim?.map((d) => Number(d.size)) ?? [];
        const shape = opts.inputShape ?? dims.map((d, i) => (d < 0 ? (i === 0 ? 'N' : `d${i}`) : d));
        if (shape.length !== 4) throw new TfjsConversionError(`Placeholder ${n.name}: rank ${shape.length} input is not supported (NHWC images only)`);
        inputs.push(valueInfo(n.name, shape));
        node('Transpose', [n.name], `${n.name}/nchw`, [intsAttr('perm', [0, 3, 1, 2])]);
        rank.set(`${n.name}/nchw`, 4);
        return;
      }
      case 'Const': return;
      case 'Mul': case 'Sub': case 'AddV2': case 'Add': {
        const r = Math.max(...ins.map((i) => rank.get(i) ?? 0));
        node(n.op === 'AddV2' ? 'Add' : n.op, ins.map((i) => operand(i, r)), n.name);
        rank.set(n.name, r);
        return;
      }
      case '_FusedConv2D': return fusedConv(n, tfIns, x, false);
      case 'FusedDepthwiseConv2dNative': return fusedConv(n, tfIns, x, true);
      case 'AvgPool': {
        // TF averages over the valid pixels only, as count_include_pad=0 does.
        node('AveragePool', [x], n.name, convAttrs(n));
        rank.set(n.name, 4);
        return;
      }
      case 'Squeeze': {
        const axes = ints(n.attr?.squeeze_dims);
        if (!axes.length) throw new TfjsConversionError(`Squeeze ${n.name}: squeeze_dims must be given`);
        const r = rank.get(x) ?? 0;
        const mapped = r === 4 ? axes.map((a) => NHWC_TO_NCHW[a < 0 ? a + 4 : a] ?? a) : axes;
        inits.push(int64Init(`${n.name}/axes`, mapped));
        node('Squeeze', [x, `${n.name}/axes`], n.name);
        rank.set(n.name, r - axes.length);
        return;
      }
      default:
        throw new TfjsConversionError(`op ${n.op} (node ${n.name}) is not supported by the TF.js-to-ONNX converter; supported: Placeholder, Const, Mul, Sub, Add/AddV2, _FusedConv2D, FusedDepthwiseConv2dNative, AvgPool, Squeeze`);
    }
  };

  function visit(name: string): void {
    if (done.has(name)) return;
    done.add(name);
    const n = byName.get(name);
    if (!n) throw new TfjsConversionError(`node ${name} is not in the graph`);
    const tfIns = (n.input ?? []).filter((i) => !i.startsWith('^')).map((i) => i.replace(/:0$/, ''));
    const multi = tfIns.find((i) => /:\d+$/.test(i));
    if (multi) throw new TfjsConversionError(`node ${name}: input ${multi} reads a second output of a node, which is not supported`);
    for (const i of tfIns) visit(i);
    emit(n, tfIns);
  }

  visit(opts.outputNode);
  const outRank = rank.get(opts.outputNode) ?? 0;
  if (outRank === 4) node('Transpose', [opts.outputNode], outputName, [intsAttr('perm', [0, 2, 3, 1])]);
  else node('Identity', [opts.outputNode], outputName);

  const graph = onnx.GraphProto.create({
    name: 'tfjs', node: nodes, initializer: inits, input: inputs,
    output: [onnx.ValueInfoProto.create({ name: outputName, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } })],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: 'twinflow tfjs-to-onnx', graph });
  return onnx.ModelProto.encode(model).finish();
}

/** Runs one of nsfwjs's UMD-wrapped files (`module.exports = ...`) in an empty context and returns what it exports. */
function loadUmd(file: string): unknown {
  const sandbox = { module: { exports: {} as unknown }, exports: {} };
  vm.runInNewContext(fs.readFileSync(file, 'utf8'), sandbox, { filename: file, timeout: 30_000 });
  return sandbox.module.exports;
}

/** The installed nsfwjs package's root folder and version. */
export function nsfwjsPackage(): { root: string; version: string } {
  // nsfwjs's "exports" hides package.json, so walk up from its main file.
  let dir = path.dirname(createRequire(import.meta.url).resolve('nsfwjs'));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      const { name, version } = JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string; version: string };
      if (name === 'nsfwjs') return { root: dir, version };
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('nsfwjs package.json not found: run npm install');
    dir = up;
  }
}

/** The 1792-d pooled feature vector of nsfwjs's MobileNetV2Mid; the Dense/Softmax head after it is dropped. */
export const MOBILENET_V2_MID_FEATURE_NODE =
  'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/feature_vector/SpatialSqueeze';

/** Reads nsfwjs's bundled MobileNetV2Mid graph model: its model.json and the shards concatenated in manifest order. */
export function loadNsfwjsMobileNetV2Mid(): { modelJson: TfjsGraphModelJson; weights: Uint8Array } {
  const dir = path.join(nsfwjsPackage().root, 'dist/models/mobilenet_v2_mid');
  // Copy out of the vm context so arrays and objects have this realm's prototypes.
  const modelJson = JSON.parse(JSON.stringify(loadUmd(path.join(dir, 'model.min.js')))) as TfjsGraphModelJson;
  const parts = modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => {
    const b64 = loadUmd(path.join(dir, `${p}.min.js`));
    if (typeof b64 !== 'string') throw new Error(`${p}.min.js did not export a base64 string`);
    return Buffer.from(b64, 'base64');
  });
  return { modelJson, weights: new Uint8Array(Buffer.concat(parts)) };
}
