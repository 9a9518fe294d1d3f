import {
  QUERY_KINDS, fnv1a, chooseIndices, countQueries, proportionalQuotas, seededRandom, splitInstances,
  type AssemblyInstance, type KindCounts, type QueryKind,
} from '../pairs.js';
import type { Loaded, LoadedInstance } from './load.js';

/**
 * The plan of a split as numbers only. A query is a uint32 id: the kinds are laid end to
 * end (positives, hard negatives, generated negatives, the order of `queriesOf`) and an id
 * maps back to its two images through per-instance and per-pair prefix sums, so rows are
 * made on the fly from an ordered Uint32Array: 561K queries cost 2.2 MB.
 */

export type SplitName = 'train' | 'eval';

/** One query, decoded: which kind, which instances (split-local) and which images (global). */
export interface DecodedQuery {
  kind: QueryKind;
  instance1: number;
  instance2: number;
  image1: number;
  image2: number;
}

export class QuerySpace {
  readonly counts: KindCounts;
  readonly total: number;
  private readonly positive: Float64Array;
  private readonly hard: Float64Array;
  private readonly generated: Float64Array;

  constructor(readonly instances: LoadedInstance[], readonly pairs: Array<[number, number]>) {
    this.positive = prefix(instances.map((x) => (x.real.length * (x.real.length - 1)) / 2));
    this.hard = prefix(pairs.map(([a, b]) => instances[a]!.real.length * instances[b]!.real.length));
    this.generated = prefix(instances.map((x) => x.real.length * x.generated.length));
    this.counts = { positive: last(this.positive), 'hard-negative': last(this.hard), 'generated-negative': last(this.generated) };
    this.total = this.counts.positive + this.counts['hard-negative'] + this.counts['generated-negative'];
  }

  /** First id of each kind. */
  offset(kind: QueryKind): number {
    if (kind === 'positive') return 0;
    return kind === 'hard-negative' ? this.counts.positive : this.counts.positive + this.counts['hard-negative'];
  }

  /** Fills `out` with query `id`, in the order `queriesOf` enumerates (see the unit test). */
  decode(id: number, out: DecodedQuery): DecodedQuery {
    let t = id;
    if (t < this.counts.positive) {
      const i = upperBound(this.positive, t);
      const real = this.instances[i]!.real;
      t -= this.positive[i]!;
      let a = 0;
      while (t >= real.length - 1 - a) t -= real.length - 1 - a++;
      return fill(out, 'positive', i, i, real[a]!, real[a + 1 + t]!);
    }
    t -= this.counts.positive;
    if (t < this.counts['hard-negative']) {
      const p = upperBound(this.hard, t);
      const [a, b] = this.pairs[p]!;
      const y = this.instances[b]!.real;
      t -= this.hard[p]!;
      return fill(out, 'hard-negative', a, b, this.instances[a]!.real[Math.floor(t / y.length)]!, y[t % y.length]!);
    }
    t -= this.counts['hard-negative'];
    const i = upperBound(this.generated, t);
    const inst = this.instances[i]!;
    t -= this.generated[i]!;
    return fill(out, 'generated-negative', i, i, inst.real[Math.floor(t / inst.generated.length)]!, inst.generated[t % inst.generated.length]!);
  }

  /** The same split as `pairs.ts` sees it, for its closed-form counts. */
  asAssembly(): { instances: Map<string, AssemblyInstance>; hardPairs: Array<[string, string]> } {
    const key = (i: number) => String(i);
    const instances = new Map(this.instances.map((x) => [x.id, { id: x.id, category: x.category, real: x.real.map(key), generated: x.generated.map(key) }]));
    return { instances, hardPairs: this.pairs.map(([a, b]) => [this.instances[a]!.id, this.instances[b]!.id]) };
  }
}

function fill(out: DecodedQuery, kind: QueryKind, instance1: number, instance2: number, image1: number, image2: number): DecodedQuery {
  out.kind = kind;
  out.instance1 = instance1;
  out.instance2 = instance2;
  out.image1 = image1;
  out.image2 = image2;
  return out;
}

/** Exclusive prefix sums with the total as the last entry. */
function prefix(values: number[]): Float64Array {
  const out = new Float64Array(values.length + 1);
  values.forEach((v, i) => (out[i + 1] = out[i]! + v));
  return out;
}

const last = (xs: Float64Array) => xs[xs.length - 1]!;

/** The slot i with starts[i] <= t < starts[i + 1] (empty slots are skipped). */
function upperBound(starts: Float64Array, t: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= t) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface SplitPlan {
  name: SplitName;
  space: QuerySpace;
  /** Global instance index of each split-local instance. */
  global: number[];
  /** Hard pairs dropped because their instances fell on different sides of the split, and their queries. */
  crossSplit: { pairs: number; queries: number };
}

/** Splits by instance (pairs.ts `splitInstances`); images never cross, since each belongs to one instance. */
export function planSplits(loaded: Loaded, evalCount: number, seed: number): Record<SplitName, SplitPlan> {
  const split = splitInstances(loaded.instances.map((x) => x.id), evalCount, seed);
  const side = loaded.instances.map((x) => (split.eval.has(x.id) ? 'eval' : 'train'));
  const plans = {} as Record<SplitName, SplitPlan>;
  let crossPairs = 0;
  let crossQueries = 0;
  for (const name of ['train', 'eval'] as const) {
    const global = loaded.instances.flatMap((_, i) => (side[i] === name ? [i] : []));
    const local = new Map(global.map((g, i) => [g, i]));
    const pairs: Array<[number, number]> = [];
    for (const [a, b] of loaded.hardPairs) {
      if (side[a] !== name) continue;
      if (side[b] === name) pairs.push([local.get(a)!, local.get(b)!]);
      else { crossPairs++; crossQueries += loaded.instances[a]!.real.length * loaded.instances[b]!.real.length; }
    }
    plans[name] = { name, global, space: new QuerySpace(global.map((g) => loaded.instances[g]!), pairs), crossSplit: { pairs: 0, queries: 0 } };
  }
  for (const plan of Object.values(plans)) plan.crossSplit = { pairs: crossPairs, queries: crossQueries };
  return plans;
}

/** Cross-checks the prefix sums against the closed forms of pairs.ts; a mismatch is a bug here. */
export function checkCounts(space: QuerySpace): void {
  const { instances, hardPairs } = space.asAssembly();
  const expected = countQueries(instances, hardPairs);
  for (const kind of QUERY_KINDS) {
    if (expected[kind] !== space.counts[kind]) throw new Error(`twin/assemble: ${kind} count ${space.counts[kind]} differs from countQueries (${expected[kind]})`);
  }
}

/** A stable sub-seed per purpose, so changing one draw (say the eval target) leaves the others alone. */
export function subSeed(seed: number, label: string): number {
  const h = fnv1a(`:${label}`, seed >>> 0);
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
}

/**
 * How many queries of each kind to keep. Without balance: `target` drawn with the kinds'
 * proportions. With balance: yes = no = min(positives, negatives, target / 2), the
 * negatives keeping their hard/generated proportions.
 */
export function quotasFor(counts: KindCounts, target: number | undefined, balance: boolean): KindCounts {
  const total = counts.positive + counts['hard-negative'] + counts['generated-negative'];
  if (!balance) return proportionalQuotas(counts, target ?? total);
  const negatives = counts['hard-negative'] + counts['generated-negative'];
  let half = Math.min(counts.positive, negatives);
  if (target !== undefined) half = Math.min(half, Math.floor(target / 2));
  const no = proportionalQuotas({ positive: 0, 'hard-negative': counts['hard-negative'], 'generated-negative': counts['generated-negative'] }, half);
  return { ...no, positive: half };
}

/** The kept ids, kind by kind in enumeration order, each kind drawn exactly by `chooseIndices`. */
export function selectQueries(space: QuerySpace, quotas: KindCounts, seed: number, split: SplitName): Record<QueryKind, Uint32Array> {
  const out = {} as Record<QueryKind, Uint32Array>;
  for (const kind of QUERY_KINDS) {
    const count = space.counts[kind];
    const keep = chooseIndices(count, quotas[kind], subSeed(seed, `${split}:${kind}`));
    const ids = new Uint32Array(Math.min(quotas[kind], count));
    const base = space.offset(kind);
    let n = 0;
    for (let i = 0; i < count && n < ids.length; i++) if (keep(i)) ids[n++] = base + i;
    out[kind] = ids;
  }
  return out;
}

function shuffle(ids: Uint32Array, random: () => number): Uint32Array {
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
  }
  return ids;
}

/**
 * The row order: a seeded shuffle. With balance, each run of `shardRows` rows takes half
 * its rows from the shuffled yes ids and half from the shuffled no ids, then is shuffled
 * itself, so any shard (and so any batch a trainer cuts from one) is balanced.
 */
export function orderQueries(selected: Record<QueryKind, Uint32Array>, balance: boolean, shardRows: number, seed: number, split: SplitName): Uint32Array {
  const random = seededRandom(subSeed(seed, `${split}:order`));
  const yes = selected.positive;
  const no = new Uint32Array(selected['hard-negative'].length + selected['generated-negative'].length);
  no.set(selected['hard-negative']);
  no.set(selected['generated-negative'], selected['hard-negative'].length);
  if (!balance) {
    const all = new Uint32Array(yes.length + no.length);
    all.set(yes);
    all.set(no, yes.length);
    return shuffle(all, random);
  }
  if (yes.length !== no.length) throw new Error(`twin/assemble: balance needs as many yes (${yes.length}) as no (${no.length}) queries`);
  shuffle(yes, random);
  shuffle(no, random);
  const out = new Uint32Array(yes.length * 2);
  const half = shardRows / 2;
  for (let start = 0; start < yes.length; start += half) {
    const end = Math.min(start + half, yes.length);
    const shard = out.subarray(start * 2, end * 2);
    shard.set(yes.subarray(start, end));
    shard.set(no.subarray(start, end), end - start);
    shuffle(shard, random);
  }
  return out;
}
