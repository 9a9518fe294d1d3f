import { describe, expect, it } from 'vitest';
import {
  QUERY_KINDS, chooseIndices, countQueries, proportionalQuotas, queriesOf, seededRandom, splitInstances,
  type AssemblyInstance, type QueryKind,
} from '../../activities/twin/pairs.js';

function instances(spec: Array<[string, number, number]>): Map<string, AssemblyInstance> {
  return new Map(spec.map(([id, real, gen]) => [id, {
    id, category: `cat-${id}`,
    real: Array.from({ length: real }, (_, i) => `${id}/r${i}.jpg`),
    generated: Array.from({ length: gen }, (_, i) => `${id}/g${i}.jpg`),
  }]));
}

const count = (kind: QueryKind, inst: Map<string, AssemblyInstance>, hard: Array<[string, string]>) => [...queriesOf(kind, inst, hard)].length;

describe('Twin pair queries', () => {
  const inst = instances([['a', 4, 2], ['b', 3, 0], ['c', 1, 5], ['d', 6, 1]]);
  const hard: Array<[string, string]> = [['a', 'b'], ['b', 'd'], ['c', 'a']];

  it('enumerates exactly the closed-form counts of each kind', () => {
    const expected = { positive: 6 + 3 + 0 + 15, 'hard-negative': 4 * 3 + 3 * 6 + 1 * 4, 'generated-negative': 4 * 2 + 0 + 1 * 5 + 6 * 1 };
    expect(countQueries(inst, hard)).toEqual(expected);
    for (const kind of QUERY_KINDS) expect(count(kind, inst, hard)).toBe(expected[kind]);
  });

  it('labels positives yes and every negative no, and never pairs an image with itself', () => {
    for (const kind of QUERY_KINDS) {
      for (const q of queriesOf(kind, inst, hard)) {
        expect(q.answer).toBe(kind === 'positive' ? 'yes' : 'no');
        expect(q.image_1).not.toBe(q.image_2);
        if (kind === 'hard-negative') expect(q.instance_1).not.toBe(q.instance_2);
        else expect(q.instance_1).toBe(q.instance_2);
      }
    }
  });

  it('grows positives quadratically with images per instance', () => {
    const sizes = [2, 4, 8, 16];
    const positives = sizes.map((n) => countQueries(instances([['x', n, 0]]), []).positive);
    expect(positives).toEqual(sizes.map((n) => (n * (n - 1)) / 2));
  });

  it('splits by instance, disjoint and the same for the same seed', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `i${i}`);
    const s1 = splitInstances(ids, 10, 7);
    const s2 = splitInstances([...ids].reverse(), 10, 7);
    expect(s1.eval.size).toBe(10);
    expect(s1.train.size).toBe(40);
    expect([...s1.eval].filter((id) => s1.train.has(id))).toEqual([]);
    expect([...s1.eval].sort()).toEqual([...s2.eval].sort());
    expect([...splitInstances(ids, 10, 8).eval].sort()).not.toEqual([...s1.eval].sort());
  });

  it('keeps the kinds\' proportions in a subsample and hits the target exactly', () => {
    const counts = { positive: 123_000, 'hard-negative': 260_000, 'generated-negative': 178_000 };
    for (const target of [5_000, 50_000, 250_000]) {
      const q = proportionalQuotas(counts, target);
      expect(q.positive + q['hard-negative'] + q['generated-negative']).toBe(target);
      for (const k of QUERY_KINDS) expect(Math.abs(q[k] / target - counts[k] / 561_000)).toBeLessThan(1 / target + 1e-9);
    }
    expect(proportionalQuotas(counts, 10_000_000)).toEqual(counts);
  });

  it('chooses exactly the quota of indices, the same ones for the same seed', () => {
    const pick = chooseIndices(100_000, 12_345, 3);
    const chosen = Array.from({ length: 100_000 }, (_, i) => i).filter(pick);
    expect(chosen).toHaveLength(12_345);
    const again = Array.from({ length: 100_000 }, (_, i) => i).filter(chooseIndices(100_000, 12_345, 3));
    expect(again).toEqual(chosen);
    // Spread over the whole range, not bunched at one end.
    expect(chosen.filter((i) => i < 50_000).length / chosen.length).toBeGreaterThan(0.45);
    expect(chosen.filter((i) => i < 50_000).length / chosen.length).toBeLessThan(0.55);
  });

  it('draws the same numbers from the same seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
