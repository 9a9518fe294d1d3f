import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { defaultMaxLineBytes, readLines, type Line, type LineOptions } from './lines.js';

/** A line of a JSONL file that could not be read as a record, with where it was. */
export interface JsonlProblem {
  file: string;
  line: number;
  /**
   * What readJsonl found wrong: no JSON (`json`), JSON but not an object (`shape`), or a line
   * longer than the cap (`tooLong`). Callers that check rows further report without one.
   */
  kind?: 'json' | 'shape' | 'tooLong';
  message: string;
}

/**
 * Streams a JSONL file one record at a time (never the whole file, nor a line past the
 * cap, in memory). A leading byte order mark is dropped and blank lines are skipped. A
 * line that is not one JSON object (bad JSON, `null`, a number, a string, an array, or
 * longer than `maxLineBytes`) goes to `onProblem` and reading goes on; without
 * `onProblem` it throws `FILE:LINE: why`.
 */
export async function* readJsonl<T>(
  file: string,
  onProblem?: (p: JsonlProblem) => void,
  opts: Pick<LineOptions, 'maxLineBytes'> = {},
): AsyncGenerator<{ value: T; line: number }> {
  const cap = opts.maxLineBytes ?? defaultMaxLineBytes();
  for await (const item of readLines(file, { maxLineBytes: cap })) {
    if (item.tooLong === undefined && !item.text.trim()) continue;
    const parsed = parseLine(item, cap);
    if ('value' in parsed) {
      yield { value: parsed.value as T, line: item.line };
      continue;
    }
    const problem: JsonlProblem = { file, line: item.line, ...parsed };
    if (!onProblem) throw new Error(`${file}:${item.line}: ${problemText(problem)}`);
    onProblem(problem);
  }
}

/** What is wrong with a line, in words: `not valid JSON (...)`, `expected a JSON object, got null`, ... */
export function problemText(p: Pick<JsonlProblem, 'kind' | 'message'>): string {
  return p.kind === 'json' ? `not valid JSON (${p.message})` : p.message;
}

function parseLine(item: Line, cap: number): { value: object } | Required<Pick<JsonlProblem, 'kind' | 'message'>> {
  if (item.tooLong !== undefined) {
    return { kind: 'tooLong', message: `the line is ${item.tooLong} bytes, longer than the ${cap}-byte limit (TWINFLOW_MAX_LINE_BYTES)` };
  }
  let value: unknown;
  try {
    value = JSON.parse(item.text);
  } catch (err) {
    return { kind: 'json', message: (err as Error).message };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { value };
  return { kind: 'shape', message: `expected a JSON object, got ${jsonTypeOf(value)}` };
}

/** `null`, `a number`, `an array`, ... for a message about a value of the wrong kind. */
export function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'undefined' ? 'nothing' : `a ${typeof value}`;
}

/** Writes JSONL with back-pressure, so producers of millions of rows stay within memory. */
export class JsonlWriter {
  private count = 0;
  private constructor(readonly file: string, private readonly out: WriteStream) {}

  static async open(file: string): Promise<JsonlWriter> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    return new JsonlWriter(file, createWriteStream(file));
  }

  get rows(): number {
    return this.count;
  }

  async write(value: unknown): Promise<void> {
    this.count++;
    if (!this.out.write(`${JSON.stringify(value)}\n`)) {
      await new Promise<void>((resolve) => this.out.once('drain', resolve));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(resolve);
    });
  }
}

/** `N malformed line(s) (line a: why; ...)` with the first five, for an error message. */
export function describeProblems(problems: readonly JsonlProblem[]): string {
  return `${problems.length} malformed line(s) (${problems.slice(0, 5).map((p) => `line ${p.line}: ${p.message}`).join('; ')})`;
}
