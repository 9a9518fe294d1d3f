import { QUERY_KINDS, type KindCounts } from '../twin/pairs.js';
import type { Loaded } from '../twin/assemble/load.js';
import type { SplitName, SplitPlan } from '../twin/assemble/plan.js';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import type { InstancePoint } from './figure.js';

/** What stats.json holds and how it is tallied while rows are written. */

export type CountsWithTotal = KindCounts & { total: number };

export const withTotal = (c: KindCounts): CountsWithTotal => ({ ...c, total: QUERY_KINDS.reduce((s, k) => s + c[k], 0) });

const zero = (): KindCounts => ({ positive: 0, 'hard-negative': 0, 'generated-negative': 0 });

/** Written rows per split: by kind, by category and by answer. */
export class RowTally {
  readonly kinds: Record<SplitName, KindCounts> = { train: zero(), eval: zero() };
  private readonly byCategory: Record<SplitName, Uint32Array>;

  constructor(private readonly vocab: Vocabulary) {
    const size = vocab.categories.length * QUERY_KINDS.length;
    this.byCategory = { train: new Uint32Array(size), eval: new Uint32Array(size) };
  }

  observe(b: RowBatch): void {
    const kinds = this.kinds[b.split];
    const cats = this.byCategory[b.split];
    for (let i = 0; i < b.length; i++) {
      const k = b.kind[i]!;
      kinds[QUERY_KINDS[k]!]++;
      cats[this.vocab.instanceCategory[b.instance1[i]!]! * QUERY_KINDS.length + k]!++;
    }
  }

  categories(split: SplitName): Record<string, CountsWithTotal> {
    const out: Record<string, CountsWithTotal> = {};
    this.vocab.categories.forEach((category, c) => {
      const counts = zero();
      QUERY_KINDS.forEach((kind, k) => (counts[kind] = this.byCategory[split][c * QUERY_KINDS.length + k]!));
      out[category] = withTotal(counts);
    });
    return out;
  }
}

/** Per instance: its real images and every query it takes part in before subsampling (Fig. 2b). */
export function instancePoints(plans: Record<SplitName, SplitPlan>): InstancePoint[] {
  const points: InstancePoint[] = [];
  for (const plan of Object.values(plans)) {
    const queries = plan.space.instances.map((x) => (x.real.length * (x.real.length - 1)) / 2 + x.real.length * x.generated.length);
    for (const [a, b] of plan.space.pairs) {
      const q = plan.space.instances[a]!.real.length * plan.space.instances[b]!.real.length;
      queries[a]! += q;
      queries[b]! += q;
    }
    plan.space.instances.forEach((x, i) => points.push({ images: x.real.length, queries: queries[i]!, split: plan.name === 'train' ? 'Twin' : 'Twin-Eval' }));
  }
  return points;
}

export function imagesPerInstance(loaded: Loaded): Record<string, number> {
  const histogram = new Map<number, number>();
  for (const x of loaded.instances) histogram.set(x.real.length, (histogram.get(x.real.length) ?? 0) + 1);
  return Object.fromEntries([...histogram.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => [String(n), c]));
}

/** Distinct images that rows of each split show, real and generated. */
export function usedImages(loaded: Loaded, used: Record<SplitName, Uint8Array>) {
  const count = (marks: Uint8Array, generated: boolean) => loaded.images.reduce((s, img, i) => s + (marks[i] && img.generated === generated ? 1 : 0), 0);
  const of = (marks: Uint8Array) => ({ real: count(marks, false), generated: count(marks, true), total: count(marks, false) + count(marks, true) });
  const all = used.train.map((v, i) => v | used.eval[i]!);
  return { train: of(used.train), eval: of(used.eval), all: of(all) };
}
