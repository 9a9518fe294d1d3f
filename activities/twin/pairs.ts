/**
 * The pair queries of Twin, as streams. Positives: every pair of real images of one
 * instance. Hard negatives: every real image of A with every real image of B, for each
 * approved hard-negative instance pair. Generated negatives: every real image of an
 * instance with every approved generated image of it. Counts have closed forms, so a
 * 561K-query set is planned and subsampled without ever being held in memory.
 */

export type QueryKind = 'positive' | 'hard-negative' | 'generated-negative';
export const QUERY_KINDS: readonly QueryKind[] = ['positive', 'hard-negative', 'generated-negative'];

export interface AssemblyInstance {
  id: string;
  category: string;
  /** Real photos, in a fixed order (the order of the manifest). */
  real: string[];
  /** Approved generated images of this instance. */
  generated: string[];
}

export interface PairQuery {
  kind: QueryKind;
  answer: 'yes' | 'no';
  image_1: string;
  image_2: string;
  instance_1: string;
  instance_2: string;
  category: string;
}

export type KindCounts = Record<QueryKind, number>;

/** How many queries of each kind the instances and hard-negative pairs make. */
export function countQueries(instances: Map<string, AssemblyInstance>, hardPairs: Array<[string, string]>): KindCounts {
  let positive = 0;
  let generated = 0;
  for (const inst of instances.values()) {
    positive += (inst.real.length * (inst.real.length - 1)) / 2;
    generated += inst.real.length * inst.generated.length;
  }
  let hard = 0;
  for (const [a, b] of hardPairs) hard += (instances.get(a)?.real.length ?? 0) * (instances.get(b)?.real.length ?? 0);
  return { positive, 'hard-negative': hard, 'generated-negative': generated };
}

/** Every query of one kind, in a deterministic order. */
export function* queriesOf(kind: QueryKind, instances: Map<string, AssemblyInstance>, hardPairs: Array<[string, string]>): Generator<PairQuery> {
  if (kind === 'hard-negative') {
    for (const [a, b] of hardPairs) {
      const x = instances.get(a);
      const y = instances.get(b);
      if (!x || !y) continue;
      for (const i1 of x.real) for (const i2 of y.real) yield query(kind, i1, i2, x, y);
    }
    return;
  }
  for (const inst of instances.values()) {
    if (kind === 'positive') {
      for (let i = 0; i < inst.real.length; i++) {
        for (let j = i + 1; j < inst.real.length; j++) yield query(kind, inst.real[i]!, inst.real[j]!, inst, inst);
      }
    } else {
      for (const r of inst.real) for (const g of inst.generated) yield query(kind, r, g, inst, inst);
    }
  }
}

function query(kind: QueryKind, image_1: string, image_2: string, a: AssemblyInstance, b: AssemblyInstance): PairQuery {
  return { kind, answer: kind === 'positive' ? 'yes' : 'no', image_1, image_2, instance_1: a.id, instance_2: b.id, category: a.category };
}

/** A small, fast, seeded generator (mulberry32): same seed, same sequence, on every platform. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Splits instances into Twin and Twin-Eval by instance: a seeded shuffle of the sorted
 * ids, the first `evalCount` go to eval. Images never cross, since images belong to
 * exactly one instance.
 */
export function splitInstances(ids: string[], evalCount: number, seed: number): { train: Set<string>; eval: Set<string> } {
  const order = [...ids].sort();
  const random = seededRandom(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return { eval: new Set(order.slice(0, evalCount)), train: new Set(order.slice(evalCount)) };
}

/**
 * Per-kind quotas for a subsample of `target` queries that keeps the kinds' proportions
 * (largest remainder, so the quotas add up to the target exactly).
 */
export function proportionalQuotas(counts: KindCounts, target: number): KindCounts {
  const total = QUERY_KINDS.reduce((sum, k) => sum + counts[k], 0);
  if (target >= total) return { ...counts };
  const exact = QUERY_KINDS.map((k) => ({ k, v: (counts[k] * target) / total }));
  const quotas = Object.fromEntries(exact.map(({ k, v }) => [k, Math.floor(v)])) as KindCounts;
  let left = target - QUERY_KINDS.reduce((sum, k) => sum + quotas[k], 0);
  for (const { k } of [...exact].sort((a, b) => (b.v % 1) - (a.v % 1) || QUERY_KINDS.indexOf(a.k) - QUERY_KINDS.indexOf(b.k))) {
    if (left-- <= 0) break;
    quotas[k]++;
  }
  return quotas;
}

/**
 * Which of `count` enumerated queries to keep: exactly `quota` indices, chosen with
 * Floyd's algorithm from a seeded generator, held as a bitset (count / 8 bytes), so the
 * selection streams alongside the enumeration.
 */
export function chooseIndices(count: number, quota: number, seed: number): (index: number) => boolean {
  if (quota >= count) return () => true;
  const bits = new Uint8Array(Math.ceil(count / 8));
  const has = (i: number) => (bits[i >> 3]! & (1 << (i & 7))) !== 0;
  const random = seededRandom(seed);
  for (let j = count - quota; j < count; j++) {
    const t = Math.floor(random() * (j + 1));
    const pick = has(t) ? j : t;
    bits[pick >> 3]! |= 1 << (pick & 7);
  }
  return has;
}

/** FNV-1a over a string's UTF-16 code units, from the offset basis XOR `seed`. */
export function fnv1a(text: string, seed = 0): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A well-spread 32-bit hash of a key's parts: FNV-1a of their JSON, then murmur3's finaliser. */
export function hashKey(...key: Array<string | number>): number {
  let h = fnv1a(JSON.stringify(key));
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A generator for one key, e.g. (seed, instance id): draws keyed this way do not change
 * when other instances are added, removed or reordered.
 */
export function keyedRandom(...key: Array<string | number>): () => number {
  return seededRandom(hashKey(...key));
}
