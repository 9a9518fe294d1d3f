import { Binary, Field, Int64, List, Struct, Utf8, makeData, type Data, type DataType } from 'apache-arrow';

/**
 * Arrow column data built straight into offset and byte buffers. Building Arrow vectors
 * from JS objects (or encoding one small string at a time) costs microseconds a value;
 * rows here are mostly repeats of a few thousand strings, encoded once and copied.
 */

export const field = (name: string, type: DataType) => new Field(name, type, false);
export const structOf = (fields: Array<[string, DataType]>) => new Struct(fields.map(([n, t]) => field(n, t)));
export const listOf = (type: DataType) => new List(field('element', type));

/** Variable-length values (utf8 or binary) appended one by one. */
export class VarColumn {
  private offsets: Int32Array;
  private bytes: Buffer;
  private n = 0;
  private pos = 0;

  constructor(private readonly type: Utf8 | Binary, capacity: number, bytesHint = capacity * 16) {
    this.offsets = new Int32Array(capacity + 1);
    this.bytes = Buffer.allocUnsafe(Math.max(64, bytesHint));
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.pos + extra));
    this.bytes.copy(grown, 0, 0, this.pos);
    this.bytes = grown;
  }

  pushBytes(value: Uint8Array): void {
    this.ensure(value.length);
    this.bytes.set(value, this.pos);
    this.pos += value.length;
    this.offsets[++this.n] = this.pos;
  }

  pushString(value: string): void {
    const length = Buffer.byteLength(value);
    this.ensure(length);
    this.bytes.write(value, this.pos);
    this.pos += length;
    this.offsets[++this.n] = this.pos;
  }

  get length(): number {
    return this.n;
  }

  data(): Data {
    const values = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.pos);
    const props = { length: this.n, nullCount: 0, valueOffsets: this.offsets.subarray(0, this.n + 1), data: values };
    return this.type instanceof Utf8 ? makeData({ type: this.type, ...props }) : makeData({ type: this.type, ...props });
  }
}

/** `n` copies of one string. */
export function constantUtf8(value: string, n: number): Data {
  const bytes = Buffer.from(value);
  const column = new VarColumn(new Utf8(), n, bytes.length * n);
  for (let i = 0; i < n; i++) column.pushBytes(bytes);
  return column.data();
}

/** Values looked up in a table of pre-encoded strings. */
export function tableUtf8(table: Uint8Array[], index: ArrayLike<number>, n: number): Data {
  const column = new VarColumn(new Utf8(), n);
  for (let i = 0; i < n; i++) column.pushBytes(table[index[i]!]!);
  return column.data();
}

export function stringsUtf8(values: string[], n: number): Data {
  const column = new VarColumn(new Utf8(), n);
  for (let i = 0; i < n; i++) column.pushString(values[i]!);
  return column.data();
}

export function int64(values: BigInt64Array): Data {
  return makeData({ type: new Int64(), length: values.length, nullCount: 0, data: values });
}

export function structData(type: Struct, children: Data[], length: number): Data {
  return makeData({ type, length, nullCount: 0, children });
}

/** A list column whose every row holds exactly `per` child values. */
export function fixedListData(type: List, child: Data, length: number, per: number): Data {
  const offsets = new Int32Array(length + 1);
  for (let i = 0; i <= length; i++) offsets[i] = i * per;
  return makeData({ type, length, nullCount: 0, valueOffsets: offsets, child });
}

export const encodeAll = (values: string[]): Uint8Array[] => values.map((v) => Buffer.from(v));
