/**
 * At most `size` tasks run at once; a finishing task hands its slot straight to the next
 * in line, so tasks start in the order they asked.
 */
export function limiter(size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active < size) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** `fn` over every item, at most `size` at once; the results in the items' order. */
export function mapBounded<T, R>(items: readonly T[], size: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = limiter(size);
  return Promise.all(items.map((item, i) => limit(() => fn(item, i))));
}
