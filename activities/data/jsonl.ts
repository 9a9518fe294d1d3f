import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** A line of a JSONL file that did not parse, with where it was. */
export interface JsonlProblem {
  file: string;
  line: number;
  message: string;
}

/**
 * Streams a JSONL file one record at a time (never the whole file in memory). Blank
 * lines are skipped; a malformed line goes to `onProblem` and reading goes on.
 */
export async function* readJsonl<T>(file: string, onProblem?: (p: JsonlProblem) => void): AsyncGenerator<{ value: T; line: number }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (!text.trim()) continue;
    try {
      yield { value: JSON.parse(text) as T, line };
    } catch (err) {
      const problem = { file, line, message: (err as Error).message };
      if (!onProblem) throw new Error(`${file}:${line}: not valid JSON (${problem.message})`);
      onProblem(problem);
    }
  }
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
