import { seededRandom } from '../twin/pairs.js';
import type { QueryType } from './answers.js';

/** One scored query: what the results JSONL holds per line. */
export interface ScoredQuery {
  id: string;
  source: string;
  type: QueryType;
  parsed: string | null;
  answer: string;
  correct: boolean;
  /** No prediction arrived for this query (it counts as wrong). */
  missing?: true;
}

/** An accuracy in percent with its bootstrap confidence interval. */
export interface Cell {
  accuracy: number;
  correct: number;
  n: number;
  missing: number;
  ci: [number, number];
}

export interface SourceSummary {
  pair?: Cell;
  multi?: Cell;
  total: Cell;
}

export interface Summary {
  sources: Record<string, SourceSummary>;
  /** The mean of the sources' totals (Table 1's last column), with its interval. */
  mean: { accuracy: number; ci: [number, number] };
}

export interface BootstrapOptions {
  /** Resamples. @default 1000 */
  resamples: number;
  /** @default 0.95 */
  confidence: number;
  seed: number;
}

const pct = (x: number) => Math.round(x * 10_000) / 100;

/**
 * Accuracy per source and query type, each with a percentile bootstrap interval:
 * queries are resampled with replacement within the cell; the mean of totals resamples
 * every source at once, so its interval covers the same draws.
 */
export function summarize(rows: readonly ScoredQuery[], opts: BootstrapOptions): Summary {
  const bySource = new Map<string, ScoredQuery[]>();
  for (const row of rows) {
    const list = bySource.get(row.source);
    if (list) list.push(row);
    else bySource.set(row.source, [row]);
  }
  const random = seededRandom(opts.seed);
  const sources: Record<string, SourceSummary> = {};
  const totals: number[][] = [];
  for (const [source, list] of [...bySource].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const cell = (subset: ScoredQuery[]) => {
      const draws = resample(subset, opts.resamples, random);
      return { cell: makeCell(subset, draws, opts.confidence), draws };
    };
    const pair = list.filter((r) => r.type === 'pair');
    const multi = list.filter((r) => r.type === 'multi');
    const total = cell(list);
    totals.push(total.draws);
    sources[source] = {
      ...(pair.length ? { pair: cell(pair).cell } : {}),
      ...(multi.length ? { multi: cell(multi).cell } : {}),
      total: total.cell,
    };
  }
  const names = Object.keys(sources);
  const mean = names.reduce((s, name) => s + sources[name]!.total.accuracy, 0) / Math.max(1, names.length);
  const meanDraws = Array.from({ length: opts.resamples }, (_, i) => totals.reduce((s, d) => s + d[i]!, 0) / Math.max(1, totals.length));
  return { sources, mean: { accuracy: Math.round(mean * 100) / 100, ci: interval(meanDraws, opts.confidence) } };
}

/** Accuracy (percent) of each resample of the cell's queries. */
function resample(rows: readonly ScoredQuery[], resamples: number, random: () => number): number[] {
  const correct = rows.map((r) => (r.correct ? 1 : 0));
  const n = correct.length;
  const out = new Array<number>(resamples);
  for (let b = 0; b < resamples; b++) {
    let hits = 0;
    for (let i = 0; i < n; i++) hits += correct[Math.floor(random() * n)]!;
    out[b] = n ? pct(hits / n) : 0;
  }
  return out;
}

function makeCell(rows: readonly ScoredQuery[], draws: number[], confidence: number): Cell {
  const correct = rows.filter((r) => r.correct).length;
  return { accuracy: rows.length ? pct(correct / rows.length) : 0, correct, n: rows.length, missing: rows.filter((r) => r.missing).length, ci: interval(draws, confidence) };
}

function interval(draws: number[], confidence: number): [number, number] {
  if (!draws.length) return [0, 0];
  const sorted = [...draws].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))]!;
  const tail = (1 - confidence) / 2;
  return [Math.round(at(tail) * 100) / 100, Math.round(at(1 - tail - 1e-12) * 100) / 100];
}
