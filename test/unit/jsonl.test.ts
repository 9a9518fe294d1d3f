/*
 * The byte-level line reader and readJsonl on top of it:
 * - \n, \r\n, and (when asked) a lone \r end lines, however chunks split them; a BOM is dropped
 * - a line past the cap is reported with its length and never held, even at hundreds of MB
 * - a JSONL line that is not one JSON object is a problem with its line number, never a crash
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonl, type JsonlProblem } from '../../activities/data/jsonl.js';
import { defaultMaxLineBytes, readLines, type Line, type LineOptions } from '../../activities/data/lines.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-jsonl-')); });
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

async function collect(chunks: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string>, opts?: LineOptions): Promise<Line[]> {
  const out: Line[] = [];
  const source = (async function* () { yield* chunks; })();
  for await (const line of readLines(source, opts)) out.push(line);
  return out;
}

/** Every way of cutting `text` into two chunks, so each ending is seen split across chunks. */
const splits = (text: string) => Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);

describe('readLines', () => {
  it('ends lines at \\n and \\r\\n wherever the chunks are cut, and keeps a last line without an ending', async () => {
    for (const chunks of splits('\uFEFFab\r\ncd\n\nef')) {
      expect(await collect(chunks), JSON.stringify(chunks)).toEqual([{ line: 1, text: 'ab' }, { line: 2, text: 'cd' }, { line: 3, text: '' }, { line: 4, text: 'ef' }]);
    }
  });

  it('drops a byte order mark only at the very start', async () => {
    expect(await collect([Buffer.from([0xef]), Buffer.from([0xbb, 0xbf, 0x41, 0x0a, 0xef, 0xbb, 0xbf, 0x42])])).toEqual([{ line: 1, text: 'A' }, { line: 2, text: '\uFEFFB' }]);
    expect(await collect([Buffer.from([0xef, 0xbb])])).toEqual([{ line: 1, text: '\uFFFD' }]);
  });

  it('ends a line at a lone \\r when asked, counting \\r\\n once, for progress output', async () => {
    for (const chunks of splits('10%\r50%\r\ndone\n')) {
      const got = await collect(chunks, { carriageReturnEndsLine: true });
      expect(got, JSON.stringify(chunks)).toEqual([{ line: 1, text: '10%' }, { line: 2, text: '50%' }, { line: 3, text: 'done' }]);
    }
    expect(await collect(['a\rb\n'])).toEqual([{ line: 1, text: 'a\rb' }]);
  });

  it('reports a line over the cap with its length and goes on with the next', async () => {
    const got = await collect(['short\n', 'x'.repeat(10), 'y'.repeat(10), '\r\nfits\n', 'z'.repeat(17)], { maxLineBytes: 16 });
    expect(got).toEqual([{ line: 1, text: 'short' }, { line: 2, tooLong: 20 }, { line: 3, text: 'fits' }, { line: 4, tooLong: 17 }]);
    expect(await collect(['a'.repeat(16), '\r\n'], { maxLineBytes: 16 })).toEqual([{ line: 1, text: 'a'.repeat(16) }]);
  });

  it('skips a line of 400 MB streamed in fresh chunks without ever holding it', async () => {
    // Each chunk is a new buffer, so a reader that kept the line would hold 400 MB of them.
    let peak = 0;
    async function* huge() {
      yield Buffer.from('{"first":1}\n');
      for (let i = 0; i < 400; i++) {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        yield Buffer.alloc(MiB, 0x61);
      }
      yield Buffer.from('\n{"last":2}\n');
    }
    const before = process.memoryUsage().arrayBuffers;
    const got: Line[] = [];
    for await (const line of readLines(huge())) got.push(line);
    expect(got).toEqual([{ line: 1, text: '{"first":1}' }, { line: 2, tooLong: 400 * MiB }, { line: 3, text: '{"last":2}' }]);
    expect(peak - before).toBeLessThan(200 * MiB);
  }, 60_000);

  it('takes its default cap from TWINFLOW_MAX_LINE_BYTES, else 64 MiB', () => {
    expect(defaultMaxLineBytes({})).toBe(64 * MiB);
    expect(defaultMaxLineBytes({ TWINFLOW_MAX_LINE_BYTES: '4096' })).toBe(4096);
    expect(defaultMaxLineBytes({ TWINFLOW_MAX_LINE_BYTES: 'lots' })).toBe(64 * MiB);
  });
});

describe('readJsonl', () => {
  it('reports every line that is not one JSON object with its line number and keeps the good ones', async () => {
    const file = path.join(dir, 'mixed.jsonl');
    await fs.writeFile(file, ['\uFEFF{"a":1}', 'null', '42', '"text"', '[1,2]', '{"b":', '', `{"c":"${'x'.repeat(200)}"}`, '{"d":4}'].join('\r\n'));
    const problems: JsonlProblem[] = [];
    const values: Array<[number, unknown]> = [];
    for await (const { value, line } of readJsonl(file, (p) => problems.push(p), { maxLineBytes: 100 })) values.push([line, value]);
    expect(values).toEqual([[1, { a: 1 }], [9, { d: 4 }]]);
    expect(problems.map((p) => [p.line, p.kind, p.message.replace(/\(.*/, '')])).toEqual([
      [2, 'shape', 'expected a JSON object, got null'],
      [3, 'shape', 'expected a JSON object, got a number'],
      [4, 'shape', 'expected a JSON object, got a string'],
      [5, 'shape', 'expected a JSON object, got an array'],
      [6, 'json', expect.any(String)],
      [8, 'tooLong', 'the line is 208 bytes, longer than the 100-byte limit '],
    ]);
  });

  it('throws FILE:LINE and why when no one takes the problems', async () => {
    const file = path.join(dir, 'null.jsonl');
    await fs.writeFile(file, '{"a":1}\nnull\n');
    const read = async () => { for await (const row of readJsonl(file)) void row; };
    await expect(read()).rejects.toThrow(`${file}:2: expected a JSON object, got null`);
  });
});
