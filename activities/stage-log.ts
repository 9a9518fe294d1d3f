import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileSafe, type HomeLayout } from './home.js';
import type { ObjectStore } from './store/objects.js';

const MAX_TAIL_LINE = 500;
/** How often a running stage's new log lines go to the store; a chunk is also cut at CHUNK_BYTES. */
const SHIP_EVERY_MS = 2_000;
const CHUNK_BYTES = 1 << 20;

/**
 * Stage logs. Each attempt appends to a file on its worker's host; with a shared store the
 * new lines also go there as the stage runs, in chunks (`logs/RUN/STAGE/<start>-<id>-<seq>`,
 * ordered by name), so `twinflow logs` reads any stage's log from any machine.
 */
export class StageLogs {
  constructor(readonly home: HomeLayout, readonly objects?: ObjectStore) {}

  file(runId: string, stageId: string): string {
    return this.home.logFile(runId, stageId);
  }

  open(runId: string, stageId: string, header: string, tailSize = 50): Promise<StageLog> {
    const ship = this.objects ? new LogShipper(this.objects, `${prefixOf(runId, stageId)}${attemptTag()}`) : undefined;
    return StageLog.open(this.file(runId, stageId), header, tailSize, ship);
  }

  /** The whole log: from the store when it is shared, else from this host's file; undefined when there is none. */
  async read(runId: string, stageId: string): Promise<string | undefined> {
    if (this.objects) {
      const parts: Buffer[] = [];
      for await (const { key } of this.objects.list(prefixOf(runId, stageId))) {
        const bytes = await this.objects.getBytes(key);
        if (bytes) parts.push(bytes);
      }
      if (parts.length) return Buffer.concat(parts).toString('utf8');
    }
    return fs.readFile(this.file(runId, stageId), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }
}

const prefixOf = (runId: string, stageId: string) => `logs/${fileSafe(runId)}/${fileSafe(stageId)}/`;
/** Sorts attempts by start time; the random part keeps two hosts starting in one millisecond apart. */
const attemptTag = () => `${String(Date.now()).padStart(14, '0')}-${randomBytes(4).toString('hex')}-`;

/**
 * A stage's log on the worker's disk, appended across attempts, plus the last lines in
 * memory for the failure message, and (with a shared store) shipped there in chunks.
 */
export class StageLog {
  private readonly tail: string[] = [];
  private constructor(
    readonly file: string,
    private readonly out: WriteStream,
    private readonly tailSize: number,
    private readonly ship?: LogShipper,
  ) {}

  static async open(file: string, header: string, tailSize = 50, ship?: LogShipper): Promise<StageLog> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const out = createWriteStream(file, { flags: 'a' });
    const log = new StageLog(file, out, tailSize, ship);
    log.write(`=== ${header}\n`);
    return log;
  }

  private write(text: string): void {
    this.out.write(text);
    this.ship?.add(text);
  }

  line(text: string): void {
    this.write(`${text}\n`);
    // The tail travels in the failure (and the run's state): a few KB, however long the lines.
    this.tail.push(text.length > MAX_TAIL_LINE ? `${text.slice(0, MAX_TAIL_LINE)}… (${text.length} characters)` : text);
    if (this.tail.length > this.tailSize) this.tail.shift();
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.out.end(resolve));
    await this.ship?.close();
  }
}

/**
 * Sends a log's new text to the store every few seconds, one object per chunk. A store that
 * is down delays the chunks (they are kept and sent later); it never fails the stage, whose
 * log is still whole on its host.
 */
export class LogShipper {
  private pending: string[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly objects: ObjectStore, private readonly keyPrefix: string) {
    this.timer = setInterval(() => void this.flush(), SHIP_EVERY_MS);
    this.timer.unref();
  }

  add(text: string): void {
    this.pending.push(text);
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingBytes >= CHUNK_BYTES) void this.flush();
  }

  /** Sends what is pending as one chunk, after the chunks before it. */
  flush(): Promise<void> {
    this.sending = this.sending.then(() => this.sendPending());
    return this.sending;
  }

  private async sendPending(): Promise<void> {
    if (!this.pending.length) return;
    const text = this.pending.join('');
    const key = `${this.keyPrefix}${String(this.seq).padStart(6, '0')}`;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      await this.objects.putBytes(key, text, { contentType: 'text/plain; charset=utf-8' });
      this.seq++;
    } catch {
      this.pending.unshift(text);
      this.pendingBytes += Buffer.byteLength(text);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    // The last chunk gets three tries, a little apart, before it is left to the host's file.
    for (let tries = 1; ; tries++) {
      await this.flush();
      if (!this.pending.length || tries === 3) break;
      await new Promise((r) => setTimeout(r, 500 * tries));
    }
    if (this.pending.length) console.warn(`twinflow: could not ship the last ${this.pendingBytes} bytes of a stage log to ${this.objects.location}; they are in the worker's log file`);
  }
}
