/*
 * Scenarios (twin/assemble's plan, pure functions over small instance sets):
 * - Decoding a query id gives exactly the query pairs.ts `queriesOf` enumerates at that
 *   position, for every kind, with empty instances and pairs in between.
 * - The per-kind counts equal the closed forms of `countQueries`.
 * - Quotas: a target keeps the kinds' proportions and is hit exactly; balance gives
 *   yes = no, capped by the smaller side and by target / 2.
 * - Selection draws exactly the quota of distinct ids of each kind; the same seed gives the
 *   same ids, another seed other ids.
 * - Order: a permutation of the selected ids; with balance every shard is half yes.
 */
import { describe, expect, it } from 'vitest';
import type { Loaded, LoadedInstance } from '../../activities/twin/assemble/load.js';
import { QuerySpace, checkCounts, orderQueries, planSplits, quotasFor, selectQueries, type DecodedQuery } from '../../activities/twin/assemble/plan.js';
import { QUERY_KINDS, countQueries, queriesOf } from '../../activities/twin/pairs.js';

/** Instances with `real` and `generated` image counts; image numbers are global and distinct. */
function space(spec: Array<[number, number]>, pairs: Array<[number, number]>): QuerySpace {
  let n = 0;
  const take = (k: number) => Array.from({ length: k }, () => n++);
  const instances: LoadedInstance[] = spec.map(([real, gen], i) => ({ id: `i${i}`, category: `c${i % 2}`, real: take(real), generated: take(gen) }));
  return new QuerySpace(instances, pairs);
}

const SPEC: Array<[number, number]> = [[4, 2], [0, 3], [1, 5], [3, 0], [6, 1], [2, 2]];
const PAIRS: Array<[number, number]> = [[0, 2], [1, 3], [3, 4], [0, 5], [4, 5]];

describe('twin/assemble query space', () => {
  it('decodes every id to the query queriesOf enumerates at that position', () => {
    const s = space(SPEC, PAIRS);
    const { instances, hardPairs } = s.asAssembly();
    let id = 0;
    const q: DecodedQuery = { kind: 'positive', instance1: 0, instance2: 0, image1: 0, image2: 0 };
    for (const kind of QUERY_KINDS) {
      for (const expected of queriesOf(kind, instances, hardPairs)) {
        s.decode(id++, q);
        expect({ kind: q.kind, image_1: String(q.image1), image_2: String(q.image2), instance_1: `i${q.instance1}`, instance_2: `i${q.instance2}` })
          .toEqual({ kind: expected.kind, image_1: expected.image_1, image_2: expected.image_2, instance_1: expected.instance_1, instance_2: expected.instance_2 });
      }
    }
    expect(id).toBe(s.total);
  });

  it('counts each kind by the closed forms of countQueries', () => {
    const s = space(SPEC, PAIRS);
    const { instances, hardPairs } = s.asAssembly();
    expect(s.counts).toEqual(countQueries(instances, hardPairs));
    expect(s.counts).toEqual({ positive: 6 + 0 + 0 + 3 + 15 + 1, 'hard-negative': 4 + 0 + 18 + 8 + 12, 'generated-negative': 8 + 0 + 5 + 0 + 6 + 4 });
    expect(() => checkCounts(s)).not.toThrow();
  });

  it('splits instances and drops hard pairs that cross, counting them', () => {
    const instances = SPEC.map(([r, g], i) => ({ id: `i${i}`, category: 'c', real: Array.from({ length: r }, (_, k) => i * 10 + k), generated: Array.from({ length: g }, (_, k) => 100 + i * 10 + k) }));
    const loaded = { instances, hardPairs: PAIRS } as unknown as Loaded;
    const plans = planSplits(loaded, 2, 3);
    expect(plans.eval.global).toHaveLength(2);
    expect([...plans.train.global, ...plans.eval.global].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const side = (g: number) => (plans.eval.global.includes(g) ? 'eval' : 'train');
    const crossing = PAIRS.filter(([a, b]) => side(a) !== side(b));
    expect(plans.train.crossSplit.pairs).toBe(crossing.length);
    expect(plans.train.crossSplit.queries).toBe(crossing.reduce((s, [a, b]) => s + SPEC[a]![0] * SPEC[b]![0], 0));
    expect(plans.train.space.pairs.length + plans.eval.space.pairs.length + crossing.length).toBe(PAIRS.length);
  });
});

describe('twin/assemble quotas, selection and order', () => {
  const counts = { positive: 1_000, 'hard-negative': 3_000, 'generated-negative': 600 };

  it('keeps proportions and hits a target exactly, and balances yes against no', () => {
    const q = quotasFor(counts, 460, false);
    expect(q).toEqual({ positive: 100, 'hard-negative': 300, 'generated-negative': 60 });
    const b = quotasFor(counts, undefined, true);
    expect(b.positive).toBe(1_000);
    expect(b['hard-negative'] + b['generated-negative']).toBe(1_000);
    expect(b['hard-negative'] / b['generated-negative']).toBeCloseTo(5, 1);
    const capped = quotasFor(counts, 301, true);
    expect(capped.positive).toBe(150);
    expect(capped['hard-negative'] + capped['generated-negative']).toBe(150);
  });

  it('selects exactly the quota of distinct ids per kind, the same ones for the same seed', () => {
    const s = space([[30, 4], [25, 6], [12, 0]], [[0, 1], [1, 2]]);
    const quotas = quotasFor(s.counts, 500, false);
    const picked = selectQueries(s, quotas, 5, 'train');
    for (const kind of QUERY_KINDS) {
      const ids = [...picked[kind]];
      expect(ids).toHaveLength(quotas[kind]);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.every((id) => id >= s.offset(kind) && id < s.offset(kind) + s.counts[kind])).toBe(true);
    }
    expect([...selectQueries(s, quotas, 5, 'train').positive]).toEqual([...picked.positive]);
    expect([...selectQueries(s, quotas, 6, 'train').positive]).not.toEqual([...picked.positive]);
  });

  it('orders a permutation of the selection, and with balance every shard is half yes', () => {
    const s = space([[30, 4], [25, 6], [12, 0]], [[0, 1], [1, 2]]);
    const picked = selectQueries(s, quotasFor(s.counts, 1_000, true), 1, 'train');
    const order = orderQueries(picked, true, 10, 1, 'train');
    const all = QUERY_KINDS.flatMap((k) => [...picked[k]]).sort((a, b) => a - b);
    expect([...order].sort((a, b) => a - b)).toEqual(all);
    for (let start = 0; start < order.length; start += 10) {
      const shard = [...order.subarray(start, start + 10)];
      expect(shard.filter((id) => id < s.counts.positive).length * 2).toBe(shard.length);
    }
    const plain = orderQueries(selectQueries(s, quotasFor(s.counts, 1_000, false), 1, 'train'), false, 10, 1, 'train');
    expect([...plain]).not.toEqual([...plain].sort((a, b) => a - b));
  });
});
