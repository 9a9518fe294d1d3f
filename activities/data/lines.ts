import { constants as bufferConstants } from 'node:buffer';
import { createReadStream } from 'node:fs';

/**
 * A byte-level line reader. Unlike `readline`, it never builds a string longer than a cap:
 * readline joins a line of hundreds of MB into one string and throws a RangeError from a
 * stream callback, where nothing can catch it and the worker process dies.
 */

/** A line as read: its text, or (past the cap) only how many bytes it held. Lines count from 1. */
export type Line = { line: number; text: string; tooLong?: undefined } | { line: number; tooLong: number; text?: undefined };

export interface LineOptions {
  /**
   * Longest line kept, in bytes (without its line ending); a longer one is yielded as
   * `{ tooLong }` and its bytes are dropped as they stream past.
   * @default defaultMaxLineBytes(): TWINFLOW_MAX_LINE_BYTES, else 64 MiB
   */
  maxLineBytes?: number;
  /**
   * A lone `\r` ends a line too (tool output, where a progress bar rewrites its line).
   * `\r\n` is always one line ending.
   * @default false
   */
  carriageReturnEndsLine?: boolean;
}

const MiB = 1024 * 1024;
export const DEFAULT_MAX_LINE_BYTES = 64 * MiB;
/** A UTF-8 line of this many bytes always fits in a V8 string (a character takes at least one byte). */
const LARGEST_CAP = bufferConstants.MAX_STRING_LENGTH;
const LF = 0x0a;
const CR = 0x0d;
const BOM = [0xef, 0xbb, 0xbf];

/** The line cap for data files: TWINFLOW_MAX_LINE_BYTES (bytes) when set to a usable number, else 64 MiB. */
export function defaultMaxLineBytes(env: NodeJS.ProcessEnv = process.env): number {
  const set = Number(env.TWINFLOW_MAX_LINE_BYTES);
  return Number.isInteger(set) && set > 0 ? Math.min(set, LARGEST_CAP) : DEFAULT_MAX_LINE_BYTES;
}

/**
 * Every line of a file (by path) or of a byte stream, in order, empty ones included. A
 * UTF-8 byte order mark at the start is dropped; `\n` and `\r\n` end lines; the last line
 * needs no line ending.
 */
export async function* readLines(input: string | AsyncIterable<Uint8Array | string>, opts: LineOptions = {}): AsyncGenerator<Line> {
  const cap = Math.min(opts.maxLineBytes ?? defaultMaxLineBytes(), LARGEST_CAP);
  const splitter = new LineSplitter(cap, opts.carriageReturnEndsLine ?? false);
  const source = typeof input === 'string' ? createReadStream(input) : input;
  for await (const chunk of withoutBom(source)) yield* splitter.push(chunk);
  yield* splitter.end();
}

/** The stream's bytes with a leading UTF-8 BOM removed, however the chunks split it. */
async function* withoutBom(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
  let head: Buffer | undefined = Buffer.alloc(0);
  for await (const piece of source) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (!head) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length < BOM.length && BOM.every((b, i) => i >= head!.length || head![i] === b)) continue;
    yield startsWithBom(head) ? head.subarray(BOM.length) : head;
    head = undefined;
  }
  if (head?.length && !startsWithBom(head)) yield head;
}

const startsWithBom = (b: Buffer) => b.length >= BOM.length && BOM.every((x, i) => b[i] === x);

/** Cuts chunks into lines, keeping at most `cap` (+1 for a `\r`) bytes of the current line. */
class LineSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  /** Bytes of the current line seen so far; above `kept` once the line went past the cap. */
  private seen = 0;
  private line = 0;
  private lastByte = -1;
  /** The last chunk ended on a `\r` that ended a line; a `\n` right after it belongs to it. */
  private afterCr = false;

  constructor(private readonly cap: number, private readonly crEnds: boolean) {}

  *push(chunk: Buffer): Generator<Line> {
    let start = 0;
    if (this.afterCr && chunk[0] === LF) start = 1;
    this.afterCr = false;
    let lf = chunk.indexOf(LF, start);
    let cr = this.crEnds ? chunk.indexOf(CR, start) : -1;
    while (lf >= 0 || cr >= 0) {
      const end = cr >= 0 && (lf < 0 || cr < lf) ? cr : lf;
      const isCr = end === cr;
      this.take(chunk.subarray(start, end));
      yield this.finish(isCr);
      start = end + 1;
      if (isCr && chunk[start] === LF) start++;
      if (isCr && start === chunk.length) this.afterCr = true;
      if (lf >= 0 && lf < start) lf = chunk.indexOf(LF, start);
      if (cr >= 0 && cr < start) cr = chunk.indexOf(CR, start);
    }
    this.take(chunk.subarray(start));
  }

  *end(): Generator<Line> {
    if (this.seen > 0) yield this.finish(false);
  }

  private take(bytes: Buffer): void {
    if (!bytes.length) return;
    this.seen += bytes.length;
    this.lastByte = bytes[bytes.length - 1]!;
    if (this.kept > this.cap) return;
    // Past the cap (and room for the `\r` of a `\r\n`) nothing more is kept: the line is too long.
    if (this.kept + bytes.length > this.cap + 1) {
      this.parts = [];
      this.kept = this.cap + 2;
      return;
    }
    this.parts.push(bytes);
    this.kept += bytes.length;
  }

  private finish(endedByCr: boolean): Line {
    this.line++;
    // The `\r` of a `\r\n` is part of the line ending, not of the line.
    const length = this.seen - (!endedByCr && this.seen > 0 && this.lastByte === CR ? 1 : 0);
    const out: Line = length > this.cap
      ? { line: this.line, tooLong: length }
      : { line: this.line, text: Buffer.concat(this.parts, this.kept).toString('utf8', 0, length) };
    this.parts = [];
    this.kept = 0;
    this.seen = 0;
    this.lastByte = -1;
    return out;
  }
}
