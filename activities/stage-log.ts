import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

const MAX_TAIL_LINE = 500;

/**
 * A stage's log on the worker's disk, appended across attempts, plus the last lines in
 * memory for the failure message.
 */
export class StageLog {
  private readonly tail: string[] = [];
  private constructor(
    readonly file: string,
    private readonly out: WriteStream,
    private readonly tailSize: number,
  ) {}

  static async open(file: string, header: string, tailSize = 50): Promise<StageLog> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const out = createWriteStream(file, { flags: 'a' });
    const log = new StageLog(file, out, tailSize);
    out.write(`=== ${header}\n`);
    return log;
  }

  line(text: string): void {
    this.out.write(`${text}\n`);
    // The tail travels in the failure (and the run's state): a few KB, however long the lines.
    this.tail.push(text.length > MAX_TAIL_LINE ? `${text.slice(0, MAX_TAIL_LINE)}… (${text.length} characters)` : text);
    if (this.tail.length > this.tailSize) this.tail.shift();
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}
