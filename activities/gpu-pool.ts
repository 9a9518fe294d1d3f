import { AsyncLocalStorage } from 'node:async_hooks';

/** Who holds (or waits for) devices: shown in the heartbeat of a stage that waits. */
export interface GpuHolder {
  runId: string;
  stageId: string;
}

/** Devices a stage holds until it calls `release` (once is enough; again is a no-op). */
export interface GpuReservation {
  devices: string[];
  release(): void;
}

interface Waiter {
  count: number;
  holder: GpuHolder;
  grant: (devices: string[]) => void;
}

/** Thrown by {@link GpuPool.reserve} for a request larger than the whole pool. */
export class GpuRequestTooLarge extends Error {
  constructor(readonly requested: number, readonly size: number) {
    super(`asks for ${requested} GPUs; this worker has ${size}`);
  }
}

/**
 * The GPUs a worker advertises (`worker.ts --gpus N`), handed to stages by device. A stage
 * reserves as many as it asks for, waiting while they are taken; waiters are served
 * strictly in arrival order, so a stage asking for 8 is never starved by a stream asking
 * for 1. Freed devices go back in index order, so a stage gets the lowest free ones.
 */
export class GpuPool {
  private readonly free: string[];
  private readonly held = new Map<string, GpuHolder>();
  private readonly queue: Waiter[] = [];

  /** @param devices device names as CUDA_VISIBLE_DEVICES lists them, e.g. ['0', '1'] */
  constructor(readonly devices: readonly string[]) {
    if (devices.length === 0 || new Set(devices).size !== devices.length) throw new RangeError(`a GPU pool needs distinct devices, not [${devices.join(', ')}]`);
    this.free = [...devices];
  }

  get size(): number {
    return this.devices.length;
  }

  get freeCount(): number {
    return this.free.length;
  }

  /** Stages waiting for devices. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Reserves `count` devices for `holder`, waiting while they are taken. A request larger
   * than the pool can never be served, so it throws GpuRequestTooLarge at once. Aborting
   * `signal` while waiting leaves the queue and rejects with the signal's reason.
   */
  reserve(count: number, holder: GpuHolder, signal?: AbortSignal): Promise<GpuReservation> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`a GPU reservation is a whole number of at least 1, not ${count}`);
    if (count > this.size) throw new GpuRequestTooLarge(count, this.size);
    signal?.throwIfAborted();
    if (this.queue.length === 0 && count <= this.free.length) return Promise.resolve(this.take(count, holder));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { count, holder, grant: (devices) => { signal?.removeEventListener('abort', onAbort); resolve(this.reservation(devices)); } };
      const onAbort = () => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        this.drain(); // the head may have been what held the others back
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** What a waiting stage tells people: how many are free and who holds the rest. */
  describe(): string {
    const byHolder = new Map<string, string[]>();
    for (const device of this.devices) {
      const h = this.held.get(device);
      if (!h) continue;
      const key = `${h.runId} ${h.stageId}`;
      byHolder.set(key, [...(byHolder.get(key) ?? []), device]);
    }
    const holders = [...byHolder].map(([who, devices]) => `${who} (GPU ${devices.join(',')})`);
    return `${this.free.length} of ${this.size} free${holders.length ? `; held by ${holders.join(', ')}` : ''}` +
      (this.queue.length ? `; ${this.queue.length} waiting` : '');
  }

  private take(count: number, holder: GpuHolder): GpuReservation {
    const devices = this.free.splice(0, count);
    for (const d of devices) this.held.set(d, holder);
    return this.reservation(devices);
  }

  private reservation(devices: string[]): GpuReservation {
    let released = false;
    return {
      devices,
      release: () => {
        if (released) return;
        released = true;
        for (const d of devices) this.held.delete(d);
        this.free.push(...devices);
        this.free.sort((a, b) => this.devices.indexOf(a) - this.devices.indexOf(b));
        this.drain();
      },
    };
  }

  private drain(): void {
    while (this.queue.length > 0 && this.queue[0]!.count <= this.free.length) {
      const next = this.queue.shift()!;
      const devices = this.free.splice(0, next.count);
      for (const d of devices) this.held.set(d, next.holder);
      next.grant(devices);
    }
  }
}

/**
 * The devices of the worker's pool, for `worker.ts --gpus N`: the first N of the worker's
 * own CUDA_VISIBLE_DEVICES when it has one (a child given "0" would otherwise see the
 * host's device 0, not the worker's first), else 0..N-1.
 */
export function gpuDevices(count: number, env: NodeJS.ProcessEnv = process.env): string[] {
  const own = env.CUDA_VISIBLE_DEVICES?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!own) return Array.from({ length: count }, (_, i) => String(i));
  if (own.length < count) {
    throw new RangeError(`--gpus ${count}, but this worker's CUDA_VISIBLE_DEVICES (${env.CUDA_VISIBLE_DEVICES}) lists ${own.length}; ` +
      `advertise at most ${own.length}, or widen CUDA_VISIBLE_DEVICES`);
  }
  return own.slice(0, count);
}

const current = new AsyncLocalStorage<readonly string[]>();

/**
 * Runs `work` with the devices a stage holds; commands it starts see exactly them as
 * CUDA_VISIBLE_DEVICES (see process-group.ts). An empty list hides every GPU.
 */
export function withGpus<T>(devices: readonly string[], work: () => Promise<T>): Promise<T> {
  return current.run(devices, work);
}

/** The devices the running stage holds, or undefined when its worker manages no GPUs. */
export function currentGpus(): readonly string[] | undefined {
  return current.getStore();
}
