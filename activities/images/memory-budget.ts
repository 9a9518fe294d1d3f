export const MiB = 1 << 20;

/** The worker's setting: how much memory all image decodes of this process may hold at once. */
export const IMAGE_MEMORY_ENV = 'TWINFLOW_IMAGE_MEMORY_MB';

interface Waiter {
  bytes: number;
  admit: () => void;
}

/**
 * A weighted semaphore over bytes. Each decode reserves its estimated memory before it
 * starts and waits while the budget is taken. Waiters are admitted strictly in arrival
 * order, so a large image is never starved by a stream of small ones.
 */
export class MemoryBudget {
  private used = 0;
  private holders = 0;
  private readonly queue: Waiter[] = [];
  /** The most bytes ever held at once. */
  peakBytes = 0;
  /** The most reservations ever held at once. */
  peakHolders = 0;

  constructor(readonly capacity: number) {
    if (!Number.isFinite(capacity) || capacity <= 0) throw new RangeError(`a memory budget needs a positive size, not ${capacity}`);
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Reservations waiting for memory to be given back. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Runs `task` holding `bytes` of the budget. A reservation larger than the whole budget
   * could never be admitted, so it is refused at once; callers quarantine such images
   * before they get here. Aborting `signal` while waiting leaves the queue and rejects.
   */
  async use<T>(bytes: number, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!(bytes >= 0) || bytes > this.capacity) {
      throw new RangeError(`a reservation of ${bytes} bytes does not fit a memory budget of ${this.capacity} bytes`);
    }
    await this.acquire(bytes, signal);
    try {
      return await task();
    } finally {
      this.used -= bytes;
      this.holders--;
      this.drain();
    }
  }

  private acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.queue.length === 0 && this.used + bytes <= this.capacity) {
      this.take(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        this.drain(); // the next in line may fit now that this one left the head
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        bytes,
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private drain(): void {
    while (this.queue.length > 0 && this.used + this.queue[0]!.bytes <= this.capacity) {
      const next = this.queue.shift()!;
      this.take(next.bytes);
      next.admit();
    }
  }

  private take(bytes: number): void {
    this.used += bytes;
    this.holders++;
    this.peakBytes = Math.max(this.peakBytes, this.used);
    this.peakHolders = Math.max(this.peakHolders, this.holders);
  }
}

let processBudget: MemoryBudget | undefined;

/**
 * The one budget every images/prepare stage of this worker process shares, sized when first
 * used by TWINFLOW_IMAGE_MEMORY_MB, or `defaultMB` without it.
 */
export function processImageMemory(defaultMB: number, env: NodeJS.ProcessEnv = process.env): MemoryBudget {
  if (processBudget) return processBudget;
  const raw = env[IMAGE_MEMORY_ENV];
  const mb = raw === undefined || raw === '' ? defaultMB : Number(raw);
  if (!Number.isInteger(mb) || mb < 1) {
    throw new Error(`${IMAGE_MEMORY_ENV}=${raw} is not a whole number of megabytes; set it to the memory image decodes may use on this worker, e.g. 2048`);
  }
  processBudget = new MemoryBudget(mb * MiB);
  return processBudget;
}
