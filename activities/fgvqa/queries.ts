import { seededRandom } from '../twin/pairs.js';

/**
 * FGVQA queries from images grouped by identity (a species, a landmark, an artwork, an
 * object instance): pair queries split exactly half yes / half no, multi queries (a
 * reference and three candidates) with answers 0-3 exactly a quarter each. No image
 * repeats inside a query, no query repeats, and the same inputs and seed give the same
 * queries.
 */

export interface Identity {
  id: string;
  images: string[];
}

export interface RawQuery {
  type: 'pair' | 'multi';
  images: string[];
  identities: string[];
  answer: string;
}

/** Thrown when a source cannot give the queries asked for; says how many it can. */
export class TooFewError extends Error {}

/** Yes-pairs a source can give: every unordered pair of images of one identity. */
function yesCapacity(ids: Identity[]): number {
  return ids.reduce((n, i) => n + (i.images.length * (i.images.length - 1)) / 2, 0);
}

export function checkCapacity(ids: Identity[], pairs: number, multi: number): void {
  const withTwo = ids.filter((i) => i.images.length >= 2).length;
  const problems: string[] = [];
  if (pairs && yesCapacity(ids) < pairs / 2) problems.push(`at most ${Math.floor(yesCapacity(ids))} yes pairs (asked for ${pairs / 2})`);
  if ((pairs || multi) && ids.length < 2) problems.push('only one identity, so no "no" answers');
  if (multi && !ids.some((i) => i.images.length >= 4)) problems.push('no identity with the 4 images a multi query answered 3 needs');
  if (multi && ids.length < 4) problems.push('fewer than 4 identities, so no multi query answered 0 without repeating one');
  if (problems.length) throw new TooFewError(`${ids.length} identities (${withTwo} with 2+ images): ${problems.join('; ')}`);
}

export interface QueryOptions {
  pairs: number;
  multi: number;
  seed: number;
  /**
   * Harder "no" answers: for each identity, the other identities its "no" images may come
   * from (the nearest by embedding). Absent: any other identity.
   */
  neighbours?: ReadonlyMap<string, readonly string[]>;
}

export function makeQueries(identities: Identity[], opts: QueryOptions): RawQuery[] {
  const ids = [...identities].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((i) => ({ id: i.id, images: [...i.images].sort() }));
  checkCapacity(ids, opts.pairs, opts.multi);
  const random = seededRandom(opts.seed);
  const pickIn = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const multiOf = ids.filter((i) => i.images.length >= 2);
  const byId = new Map(ids.map((i) => [i.id, i]));
  const near = opts.neighbours && new Map(ids.map((i) => [i.id, (opts.neighbours!.get(i.id) ?? []).filter((n) => n !== i.id && byId.has(n)).map((n) => byId.get(n)!)]));
  /** Another identity for a "no" answer: a neighbour of `ref`, or any. */
  const otherThan = (ref: Identity): Identity | undefined => {
    if (!near) return pickIn(ids);
    const list = near.get(ref.id)!;
    return list.length ? pickIn(list) : undefined;
  };
  const seen = new Set<string>();
  const out: RawQuery[] = [];
  const plan: Array<{ type: 'pair' | 'multi'; answer: string }> = [
    ...Array.from({ length: opts.pairs }, (_, i) => ({ type: 'pair' as const, answer: i % 2 ? 'no' : 'yes' })),
    ...Array.from({ length: opts.multi }, (_, i) => ({ type: 'multi' as const, answer: String(i % 4) })),
  ];
  for (const want of plan) {
    const made = draw(want, () => (want.type === 'pair' ? pairQuery(want.answer === 'yes') : multiQuery(Number(want.answer))));
    out.push(made);
  }
  return out;

  function draw(want: { type: string; answer: string }, make: () => RawQuery | undefined): RawQuery {
    for (let attempt = 0; attempt < 200; attempt++) {
      const q = make();
      // An image listed under two identities (a duplicate in the source) must not meet itself.
      if (!q || new Set(q.images).size !== q.images.length) continue;
      const key = q.type === 'pair' ? `p:${[...q.images].sort().join('|')}` : `m:${q.images[0]}|${q.images.slice(1).sort().join('|')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      return q;
    }
    const made = out.filter((q) => q.type === want.type && q.answer === want.answer).length;
    throw new TooFewError(`made only ${made} distinct ${want.type} queries answered ${want.answer} before running out; ask for fewer`);
  }

  function pairQuery(yes: boolean): RawQuery | undefined {
    if (yes) {
      const who = pickIn(multiOf);
      const [a, b] = twoOf(who.images);
      return { type: 'pair', images: [a, b], identities: [who.id, who.id], answer: 'yes' };
    }
    const a = pickIn(ids);
    const b = otherThan(a);
    if (!b || a === b) return undefined;
    return { type: 'pair', images: [pickIn(a.images), pickIn(b.images)], identities: [a.id, b.id], answer: 'no' };
  }

  function multiQuery(k: number): RawQuery | undefined {
    const ref = pickIn(ids);
    if (ref.images.length < k + 1) return undefined;
    const own = shuffle(ref.images).slice(0, k + 1);
    const candidates = own.slice(1).map((img) => ({ img, id: ref.id }));
    const others = new Set<string>([ref.id]);
    const pool = near ? near.get(ref.id)!.length + 1 : ids.length;
    while (candidates.length < 3) {
      const other = otherThan(ref);
      if (!other) return undefined;
      if (others.has(other.id)) {
        if (others.size >= pool) return undefined;
        continue;
      }
      others.add(other.id);
      candidates.push({ img: pickIn(other.images), id: other.id });
    }
    const order = shuffle(candidates);
    return { type: 'multi', images: [own[0]!, ...order.map((c) => c.img)], identities: [ref.id, ...order.map((c) => c.id)], answer: String(k) };
  }

  function twoOf(list: string[]): [string, string] {
    const i = Math.floor(random() * list.length);
    let j = Math.floor(random() * (list.length - 1));
    if (j >= i) j++;
    return [list[i]!, list[j]!];
  }

  function shuffle<T>(list: readonly T[]): T[] {
    const a = [...list];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}
