import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { z } from 'zod';
import { dedupeInputs, dedupeOutputs } from '../../engine/kinds/similarity.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { topk, type TopkResult } from '../embed/topk.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { REVIEW_ITEMS_MEDIA_TYPE, type ReviewItem } from '../review/items.js';
import { hnswTopk, sampledRecall } from '../similarity/approximate.js';
import { startHeartbeat } from '../similarity/heartbeat.js';
import { instancesDone, loadInstanceMatrix, type InstanceMatrix } from '../similarity/instance-matrix.js';
import type { StageActivityInput } from '../stage-io.js';
import { dedupeKind } from '../../engine/kinds/similarity.js';
import type { Implementation } from '../kind-implementation.js';

export const DEDUPE_QUESTION = 'Are these two listings the same product (the same object instance, possibly photographed differently)?';

/** One image of another listing, flagged by listing `from`: its best cosine with any of `from`'s images. */
interface Flag {
  from: number;
  /** The flagged image's matrix row, and the row of `from`'s image closest to it. */
  column: number;
  row: number;
  score: number;
}

/** Everything two listings' flags say about them: a (manifest position) sorts before b by id. */
interface PairEvidence {
  a: number;
  b: number;
  fromA: number;
  fromB: number;
  score: number;
  /** Matrix rows of the best pair: a's image, b's image. */
  imageA: number;
  imageB: number;
}

/**
 * `twin/dedupe` (paper §3): each listing P with m images flags the m images of other
 * listings most similar to any of P's images (an image counts once, at its best cosine).
 * Flags between the same two listings, from either side, make one candidate pair for
 * people to confirm; twin/merge then merges what they accept. `deps.blockRows` overrides
 * the search's block size (tests use small blocks to cross boundaries).
 */
export function createDedupeCandidates(deps: { store: ArtifactStore; home: HomeLayout; blockRows?: number }): Implementation<typeof dedupeKind> {
  return async function dedupeCandidates(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(dedupeInputs, input);
    const set = await loadInstanceMatrix(deps.store, spec, input, { strict: true });
    const progress = { done: 0, total: set.rows.length, unit: 'listings' };
    const stop = startHeartbeat(ctx, progress);
    // Each image's m best images of other listings, m = its own listing's image count.
    const k = (q: number) => size(set, set.owner[q]!);
    const exclude = (q: number) => ({ start: set.starts[set.owner[q]!]!, end: set.starts[set.owner[q]! + 1]! });
    let neighbours: TopkResult;
    let search: DedupeCounts['search'];
    try {
      if (spec.search.method === 'exact') {
        neighbours = await topk(set.matrix, set.matrix, {
          k, exclude, threads: spec.threads, blockRows: deps.blockRows, signal: ctx.cancellationSignal,
          onProgress: (rows) => { progress.done = instancesDone(set, rows); },
        });
        search = { method: 'exact', precision: 'f32' };
      } else {
        const { recallSample, ...hnsw } = spec.search;
        neighbours = await hnswTopk(set.matrix, {
          ...hnsw, k, exclude, threads: spec.threads, signal: ctx.cancellationSignal,
          onProgress: (done, total) => { progress.done = Math.floor((progress.total * done) / total); },
        });
        const { recall, sampled } = await sampledRecall(set.matrix, neighbours, { sample: recallSample, seed: 0, k, exclude, threads: spec.threads, signal: ctx.cancellationSignal });
        search = { method: 'hnsw', precision: hnsw.precision, recall, sampled };
      }
    } finally {
      stop();
    }
    const flags = set.rows.flatMap((_, p) => flagsOf(set, neighbours, p, spec.minScore));
    const items = [...pairsOf(set, flags).values()].map((pair) => toItem(set, pair))
      .sort((x, y) => y.score! - x.score! || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'candidates.jsonl'));
    for (const item of items) await out.write({ ...item, score: round(item.score!) });
    await out.close();
    const candidates = await deps.store.putFile(out.file, REVIEW_ITEMS_MEDIA_TYPE);
    candidates.counts = { items: items.length };
    const counts = { products: set.rows.length, images: set.matrix.rows, flags: flags.length, candidates: items.length, search };
    return { outputs: { candidates, counts }, attempt: ctx.info.attempt };
  };
}

type DedupeCounts = z.infer<typeof dedupeOutputs>['counts'];

const size = (set: InstanceMatrix, i: number) => set.starts[i + 1]! - set.starts[i]!;
const round = (score: number) => Math.round(score * 1e6) / 1e6;

/**
 * Listing p's flags. Each of its rows returned its m best other-listing images, so the m
 * best images by their best cosine with any of p's rows are all among them.
 */
function flagsOf(set: InstanceMatrix, neighbours: TopkResult, p: number, minScore?: number): Flag[] {
  const best = new Map<number, Flag>();
  for (let row = set.starts[p]!; row < set.starts[p + 1]!; row++) {
    for (let i = neighbours.offsets[row]!; i < neighbours.offsets[row + 1]!; i++) {
      const column = neighbours.indices[i]!;
      const score = neighbours.scores[i]!;
      const seen = best.get(column);
      if (!seen || score > seen.score) best.set(column, { from: p, column, row, score });
    }
  }
  return [...best.values()]
    .sort((x, y) => y.score - x.score || x.column - y.column)
    .slice(0, size(set, p))
    .filter((f) => minScore === undefined || f.score >= minScore);
}

/** Flags grouped by unordered listing pair; the first best-scoring flag (listing order) gives the image pair. */
function pairsOf(set: InstanceMatrix, flags: Flag[]): Map<string, PairEvidence> {
  const pairs = new Map<string, PairEvidence>();
  for (const flag of flags) {
    const other = set.owner[flag.column]!;
    const fromFirst = set.rows[flag.from]!.instance_id < set.rows[other]!.instance_id;
    const [a, b] = fromFirst ? [flag.from, other] : [other, flag.from];
    const key = `${a}|${b}`;
    let pair = pairs.get(key);
    if (!pair) {
      pair = { a, b, fromA: 0, fromB: 0, score: -Infinity, imageA: -1, imageB: -1 };
      pairs.set(key, pair);
    }
    if (fromFirst) pair.fromA++;
    else pair.fromB++;
    if (flag.score > pair.score) {
      pair.score = flag.score;
      [pair.imageA, pair.imageB] = fromFirst ? [flag.row, flag.column] : [flag.column, flag.row];
    }
  }
  return pairs;
}

function toItem(set: InstanceMatrix, pair: PairEvidence): ReviewItem {
  const [x, y] = [set.rows[pair.a]!, set.rows[pair.b]!];
  return {
    id: `dup:${x.instance_id}|${y.instance_id}`,
    score: pair.score,
    images: [set.images[pair.imageA]!, set.images[pair.imageB]!],
    question: DEDUPE_QUESTION,
    metadata: {
      instance_1: x.instance_id, instance_2: y.instance_id,
      title_1: x.title, title_2: y.title,
      category_1: x.category, category_2: y.category,
      asins_1: x.asins, asins_2: y.asins,
      flags: { from_1: pair.fromA, from_2: pair.fromB },
    },
  };
}
