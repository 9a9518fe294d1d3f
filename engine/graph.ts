/**
 * Dependency graph of stages: cycles (named, so a person can break them) and a
 * topological order that keeps declaration order where dependencies allow.
 */

/** For each node, the nodes it depends on. Every node must be a key. */
export type DependencyGraph = ReadonlyMap<string, readonly string[]>;

/** Strongly connected components with more than one node (Tarjan). */
function components(graph: DependencyGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const dep of graph.get(node) ?? []) {
      if (!index.has(dep)) {
        connect(dep);
        low.set(node, Math.min(low.get(node)!, low.get(dep)!));
      } else if (onStack.has(dep)) low.set(node, Math.min(low.get(node)!, index.get(dep)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) found.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) connect(node);
  return found;
}

/** Shortest path from `start` back to itself inside `members`, by breadth-first search. */
function shortestCycle(graph: DependencyGraph, start: string, members: ReadonlySet<string>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const dep of graph.get(node) ?? []) {
      if (!members.has(dep)) continue;
      if (dep === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(dep)) {
        previous.set(dep, node);
        queue.push(dep);
      }
    }
  }
  return [start, start];
}

/**
 * One cycle per group of stages that depend on each other, each as a path that starts
 * and ends at the member declared first: `['a', 'b', 'c', 'a']` means a needs b, b needs
 * c, c needs a. Self-loops are left to the caller, which reports them on their own.
 */
export function findCycles(graph: DependencyGraph): string[][] {
  const declared = [...graph.keys()];
  return components(graph)
    .map((component) => {
      const members = new Set(component);
      const start = declared.find((node) => members.has(node))!;
      return shortestCycle(graph, start, members);
    })
    .sort((a, b) => declared.indexOf(a[0]!) - declared.indexOf(b[0]!));
}

/** Inserts `value` into the ascending array `sorted`, keeping it sorted. */
function insertSorted(sorted: number[], value: number): void {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid]! < value) low = mid + 1;
    else high = mid;
  }
  sorted.splice(low, 0, value);
}

/**
 * Nodes so that each comes after everything it depends on; among nodes that are ready
 * at the same time, the one declared first goes first (Kahn's algorithm over
 * declaration indexes). Throws when the graph has a cycle: callers check first.
 */
export function topologicalOrder(graph: DependencyGraph): string[] {
  const declared = [...graph.keys()];
  const index = new Map(declared.map((node, i) => [node, i]));
  const waitingOn = declared.map((node) => new Set(graph.get(node)).size);
  const dependents: number[][] = declared.map(() => []);
  declared.forEach((node, i) => new Set(graph.get(node)).forEach((dep) => dependents[index.get(dep)!]!.push(i)));
  const ready = declared.flatMap((_, i) => (waitingOn[i] === 0 ? [i] : []));
  const order: string[] = [];
  while (ready.length > 0) {
    const next = ready.shift()!;
    order.push(declared[next]!);
    for (const dependent of dependents[next]!) if (--waitingOn[dependent]! === 0) insertSorted(ready, dependent);
  }
  if (order.length < declared.length) throw new Error(`dependency cycle among: ${declared.filter((n) => !order.includes(n)).join(', ')}`);
  return order;
}
