import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * A text file written in ~1 MB chunks with back-pressure: hundreds of MB of JSON lines go
 * out without one `write` call per line and without ever piling up in memory.
 */
export class TextSink {
  private parts: string[] = [];
  private pending = 0;
  private readonly out: WriteStream;

  constructor(readonly file: string, private readonly chunkChars = 1 << 20) {
    // Several chunks may be in flight, so the next rows are made while the disk writes.
    this.out = createWriteStream(file, { highWaterMark: 4 * chunkChars });
  }

  /** Appends text; call `flush` now and then (every batch) to let it drain. */
  push(text: string): void {
    this.parts.push(text);
    this.pending += text.length;
  }

  async flush(force = false): Promise<void> {
    if (!force && this.pending < this.chunkChars) return;
    if (this.parts.length === 0) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.pending = 0;
    if (!this.out.write(chunk)) await new Promise<void>((resolve) => this.out.once('drain', resolve));
  }

  async close(): Promise<void> {
    await this.flush(true);
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(resolve);
    });
  }

  /** Stops writing after a failure; the partial file is the caller's to remove. */
  destroy(): void {
    this.out.destroy();
  }
}
