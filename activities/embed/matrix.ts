import fs from 'node:fs/promises';

/**
 * An `embed/images` matrix: raw little-endian float32, row-major, `rows` x `dims`, no header
 * (the index artifact and the stage's counts say what the rows are).
 */
export interface Matrix {
  data: Float32Array;
  rows: number;
  dims: number;
}

/** Reads a whole matrix file; throws when its size is not a multiple of a row. */
export async function readMatrix(file: string, dims: number): Promise<Matrix> {
  const bytes = await fs.readFile(file);
  const rowBytes = dims * 4;
  if (dims <= 0 || bytes.byteLength % rowBytes !== 0) {
    throw new Error(`${file}: ${bytes.byteLength} bytes is not a whole number of ${dims}-float rows`);
  }
  return { data: fromLittleEndian(bytes), rows: bytes.byteLength / rowBytes, dims };
}

/** Row `i` as a view (no copy). */
export function row(m: Matrix, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= m.rows) throw new RangeError(`row ${i} is outside 0..${m.rows - 1}`);
  return m.data.subarray(i * m.dims, (i + 1) * m.dims);
}

/** The given rows, in the given order, as a matrix of their own (a copy). */
export function pickRows(m: Matrix, rows: ArrayLike<number>): Matrix {
  const { dims } = m;
  const data = new Float32Array(rows.length * dims);
  for (let i = 0; i < rows.length; i++) data.set(m.data.subarray(rows[i]! * dims, (rows[i]! + 1) * dims), i * dims);
  return { data, rows: rows.length, dims };
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  const n = Math.sqrt(dot(a, a) * dot(b, b));
  return n === 0 ? 0 : dot(a, b) / n;
}

/** Scales `v` in place to unit length; a zero vector stays zero. */
export function l2Normalize(v: Float32Array): Float32Array {
  const n = Math.sqrt(dot(v, v));
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}

/** Bytes of rows in the file's little-endian order, whatever the host's order. */
export function toLittleEndian(rows: Float32Array): Buffer {
  const out = Buffer.alloc(rows.length * 4);
  for (let i = 0; i < rows.length; i++) out.writeFloatLE(rows[i]!, i * 4);
  return out;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function fromLittleEndian(bytes: Buffer): Float32Array {
  // On little-endian hosts (all that twinflow runs on in practice) the bytes are the floats: one copy.
  if (HOST_IS_LITTLE_ENDIAN) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
