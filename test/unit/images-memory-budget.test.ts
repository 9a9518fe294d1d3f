import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../activities/images/memory-budget.js';
import { seededRandom } from '../../activities/twin/pairs.js';

/** A task that runs until the test lets it finish. */
function held() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { done, finish };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('MemoryBudget', () => {
  it('never admits more than its budget, whatever the sizes and the order tasks finish in', async () => {
    const budget = new MemoryBudget(1000);
    const random = seededRandom(3);
    const running: Array<{ bytes: number; finish: () => void }> = [];
    let admitted = 0;
    const tasks = Array.from({ length: 200 }, () => {
      const bytes = 1 + Math.floor(random() * 600);
      return budget.use(bytes, async () => {
        expect(budget.usedBytes).toBeLessThanOrEqual(1000);
        admitted++;
        const h = held();
        running.push({ bytes, finish: h.finish });
        await h.done;
      });
    });
    while (admitted < 200 || running.length > 0) {
      await settle();
      const sum = running.reduce((s, r) => s + r.bytes, 0);
      expect(sum).toBe(budget.usedBytes);
      expect(sum).toBeLessThanOrEqual(1000);
      if (running.length) running.splice(Math.floor(random() * running.length), 1)[0]!.finish();
    }
    await Promise.all(tasks);
    expect(budget.peakBytes).toBeLessThanOrEqual(1000);
    expect(budget.peakHolders).toBeGreaterThan(1);
    expect(budget.usedBytes).toBe(0);
  });

  it('admits in arrival order: a large reservation is not overtaken by smaller ones that would fit', async () => {
    const budget = new MemoryBudget(100);
    const order: string[] = [];
    const first = held();
    const a = budget.use(60, async () => { order.push('a'); await first.done; });
    const b = budget.use(80, async () => { order.push('b'); });
    const c = budget.use(10, async () => { order.push('c'); });
    await settle();
    expect(order).toEqual(['a']); // c would fit beside a, but b came first
    first.finish();
    await Promise.all([a, b, c]);
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('refuses at once a reservation larger than the whole budget', async () => {
    const budget = new MemoryBudget(100);
    await expect(budget.use(101, async () => 'ran')).rejects.toThrow(RangeError);
    expect(budget.usedBytes).toBe(0);
  });

  it('gives the reservation back when the task fails', async () => {
    const budget = new MemoryBudget(100);
    await expect(budget.use(100, async () => { throw new Error('decode failed'); })).rejects.toThrow('decode failed');
    await expect(budget.use(100, async () => 'next')).resolves.toBe('next');
  });

  it('lets a waiter leave the queue when its signal aborts, and the next one in', async () => {
    const budget = new MemoryBudget(100);
    const first = held();
    const a = budget.use(50, () => first.done);
    const abort = new AbortController();
    const b = budget.use(100, async () => 'b ran', abort.signal);
    const c = budget.use(50, async () => 'c ran');
    await settle();
    abort.abort(new Error('stage cancelled'));
    await expect(b).rejects.toThrow('stage cancelled');
    await expect(c).resolves.toBe('c ran'); // fits beside a once b has left the head of the queue
    first.finish();
    await a;
    expect(budget.usedBytes).toBe(0);
  });
});
