import fs from 'node:fs/promises';

/** One line of verl's `file` logger (verl/utils/tracking.py): `{"step": N, "data": {metric: value}}`. */
export interface StepMetrics {
  step: number;
  data: Record<string, number>;
}

/**
 * Follows a JSON-lines file a tool appends to (verl's metrics, LLaMA-Factory's trainer
 * log), from where it was last read: each call returns the records added since. A line
 * still being written waits for its newline; a line `parse` refuses is skipped.
 */
export class JsonlTail<T = StepMetrics> {
  private offset = 0;
  private partial = '';

  constructor(readonly file: string, private readonly parse: (line: string) => T | undefined = parseStep as (line: string) => T | undefined) {}

  async read(): Promise<T[]> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size < this.offset) [this.offset, this.partial] = [0, '']; // truncated: start again
      if (size === this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buf.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      return lines.map((l) => this.parse(l)).filter((v): v is T => v !== undefined);
    } finally {
      await handle.close();
    }
  }
}

/**
 * Reads `tail` every second while a tool runs, handing each new record on; the returned
 * stop reads once more (what the tool wrote last) and stops.
 */
export function follow<T>(tail: JsonlTail<T>, onRecord: (record: T) => void, everyMs = 1_000): () => Promise<void> {
  const read = async () => { for (const r of await tail.read()) onRecord(r); };
  const timer = setInterval(() => void read().catch(() => undefined), everyMs);
  return async () => {
    clearInterval(timer);
    await read();
  };
}

export function parseStep(line: string): StepMetrics | undefined {
  try {
    const v = JSON.parse(line) as { step?: unknown; data?: unknown };
    if (typeof v?.step !== 'number' || !v.data || typeof v.data !== 'object') return undefined;
    const data: Record<string, number> = {};
    for (const [k, x] of Object.entries(v.data)) if (typeof x === 'number' && Number.isFinite(x)) data[k] = x;
    return { step: v.step, data };
  } catch {
    return undefined;
  }
}

/** The metrics a person watching a GRPO run wants, by verl's names (trainer/ppo/metric_utils.py). */
export const WATCHED = {
  reward: 'critic/score/mean',
  kl: 'actor/kl_loss',
  responseLength: 'response_length/mean',
} as const;

/** "reward 0.62, kl 0.0012, response 311 tokens" from a step's metrics. */
export function describeStep(m: StepMetrics | undefined): string | undefined {
  if (!m) return undefined;
  const parts: string[] = [];
  const r = m.data[WATCHED.reward];
  const kl = m.data[WATCHED.kl];
  const len = m.data[WATCHED.responseLength];
  if (r !== undefined) parts.push(`reward ${r.toFixed(3)}`);
  if (kl !== undefined) parts.push(`kl ${kl.toPrecision(3)}`);
  if (len !== undefined) parts.push(`response ${Math.round(len)} tokens`);
  return parts.join(', ') || undefined;
}
