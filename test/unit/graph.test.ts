import { describe, expect, it } from 'vitest';
import { findCycles, topologicalOrder } from '../../engine/graph.js';

describe('dependency graph', () => {
  it('finds each separate cycle once, starting at the node declared first', () => {
    const graph = new Map([
      ['x', ['y']],
      ['a', ['b']],
      ['b', ['c', 'x']],
      ['c', ['a']],
      ['y', ['x']],
      ['free', []],
    ]);
    expect(findCycles(graph)).toEqual([
      ['x', 'y', 'x'],
      ['a', 'b', 'c', 'a'],
    ]);
  });

  it('names the shortest way round when a group of stages has several cycles', () => {
    const graph = new Map([
      ['a', ['b', 'c']],
      ['b', ['c']],
      ['c', ['a']],
    ]);
    expect(findCycles(graph)).toEqual([['a', 'c', 'a']]);
    // b only leads into the cycle, so it is not part of what must be broken.
    expect(findCycles(new Map([['b', ['c']], ['a', ['c']], ['c', ['a']]]))).toEqual([['a', 'c', 'a']]);
  });

  it('orders dependencies first and otherwise keeps declaration order', () => {
    const graph = new Map([
      ['report', ['count', 'sum']],
      ['sum', ['gen']],
      ['count', ['gen']],
      ['gen', []],
      ['lint', []],
    ]);
    expect(topologicalOrder(graph)).toEqual(['gen', 'sum', 'count', 'report', 'lint']);
  });

  it('refuses to order a graph with a cycle', () => {
    expect(() => topologicalOrder(new Map([['a', ['b']], ['b', ['a']]]))).toThrow(/cycle among: a, b/);
  });
});
