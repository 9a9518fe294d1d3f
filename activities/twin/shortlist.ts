import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { z } from 'zod';
import { shortlistInputs } from '../../engine/kinds/similarity.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { SessionPool, visitScoreBlocks, type ScoreBlock } from '../embed/topk.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { REVIEW_ITEMS_MEDIA_TYPE, type ReviewItem } from '../review/items.js';
import { pickRows } from '../embed/matrix.js';
import { hnswTopk, sampleRows, type HnswOptions } from '../similarity/approximate.js';
import { startHeartbeat } from '../similarity/heartbeat.js';
import { instancesDone, loadInstanceMatrix, subsetOf, type InstanceMatrix } from '../similarity/instance-matrix.js';
import { keyedRandom, seededRandom } from './pairs.js';
import { RankedList } from '../similarity/ranked-list.js';
import type { StageActivityInput } from '../stage-io.js';
import { shortlistKind } from '../../engine/kinds/similarity.js';
import type { Implementation } from '../kind-implementation.js';

type ShortlistSpec = z.infer<typeof shortlistInputs>;

export const SHORTLIST_QUESTION = 'Is the second a hard negative for the first: a different object instance that looks very much alike?';

/**
 * `twin/shortlist` (paper §3): for each instance A with m real images, the k other
 * instances B with the highest score(A, B) = the highest cosine between any image of A and
 * any image of B, k drawn uniformly from the integers in [kMin m, kMax m] by a generator
 * keyed by (seed, A's id). Scores are exact: every image pair is scored once, on the upper
 * triangle (score(A, B) = score(B, A)), in blocks of whole instances, and reduced per pair;
 * with sameCategory, each category's instances are searched on their own. `search: hnsw`
 * finds the pairs through an approximate graph instead (see approximatePairs). `deps.blockRows` overrides the block size (tests use small blocks to cross boundaries).
 */
export function createShortlistHardNegatives(deps: { store: ArtifactStore; home: HomeLayout; blockRows?: number }): Implementation<typeof shortlistKind> {
  return async function shortlistHardNegatives(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(shortlistInputs, input);
    const set = await loadInstanceMatrix(deps.store, spec, input, { strict: false });
    const ks = set.rows.map((row, i) => drawK(row.instance_id, size(set, i), spec));
    const lists = ks.map((k) => new RankedList(k));
    const progress = { done: 0, total: set.rows.length, unit: 'instances' };
    const stop = startHeartbeat(ctx, progress);
    // One onnxruntime session per graph for every category's search, not one each.
    const sessions = new SessionPool();
    const searched = { threads: spec.threads, signal: ctx.cancellationSignal, sessions };
    const { search } = spec;
    // hnsw: instances whose lists are checked against exact search, drawn once over the whole set.
    const sampled = search.method === 'hnsw' ? new Set(sampleRows(set.rows.length, search.recallSample, seededRandom(spec.seed))) : undefined;
    const recall = { hits: 0, wanted: 0, instances: 0 };
    try {
      for (const group of searchGroups(set, spec.sameCategory)) {
        // A category is searched on its own rows only: about 1/36 of the work with the paper's 36 categories.
        const { subset, rowOf } = group.length === set.rows.length ? { subset: set, rowOf: undefined } : subsetOf(set, group);
        const groupLists = Array.from(group, (i) => lists[i]!);
        const before = progress.done;
        if (search.method === 'exact') {
          const reducer = new PairReducer(subset, groupLists);
          await visitScoreBlocks(subset.matrix, subset.matrix, {
            ...searched, upper: true, breaks: subset.starts.subarray(1), blockRows: deps.blockRows,
            onProgress: (rows) => { progress.done = before + instancesDone(subset, rows); },
          }, (block) => reducer.visit(block));
        } else {
          await approximatePairs(subset, groupLists, search, {
            ...searched, onProgress: (done, total) => { progress.done = before + Math.floor((group.length * done) / total); },
          });
          const checked = Array.from(group.keys()).filter((a) => sampled!.has(group[a]!) && size(subset, a) > 0);
          for (const a of checked) {
            const exact = await exactList(subset, a, groupLists[a]!.k, searched);
            const found = new Set(groupLists[a]!.ids.subarray(0, groupLists[a]!.size));
            recall.hits += exact.filter((b) => found.has(b)).length;
            recall.wanted += exact.length;
          }
          recall.instances += checked.length;
        }
        if (rowOf) for (const list of groupLists) list.relabel((id) => group[id]!, (row) => rowOf[row]!);
        progress.done = before + group.length;
      }
    } finally {
      stop();
      await sessions.release();
    }
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'candidates.jsonl'));
    for (let a = 0; a < set.rows.length; a++) for (const item of itemsOf(set, a, lists[a]!)) await out.write(item);
    await out.close();
    const candidates = await deps.store.putFile(out.file, REVIEW_ITEMS_MEDIA_TYPE);
    candidates.counts = { items: out.rows };
    const counts = {
      instances: set.rows.length, candidates: out.rows,
      search: search.method === 'exact'
        ? { method: 'exact' as const, precision: 'f32' as const }
        : { method: 'hnsw' as const, precision: search.precision, recall: recall.wanted ? recall.hits / recall.wanted : 1, sampled: recall.instances },
    };
    return { outputs: { candidates, counts }, attempt: ctx.info.attempt };
  };
}

const size = (set: InstanceMatrix, i: number) => set.starts[i + 1]! - set.starts[i]!;

/**
 * How many candidates an instance with `images` real images gets: uniform on the integers
 * in [kMin x images, kMax x images], from a generator keyed by (seed, instance id), so the
 * draw does not depend on which other instances there are or their order; capped by
 * maxPerInstance.
 */
export function drawK(instanceId: string, images: number, spec: Pick<ShortlistSpec, 'seed' | 'kMin' | 'kMax' | 'maxPerInstance'>): number {
  const lo = Math.ceil(spec.kMin * images - 1e-9);
  const hi = Math.max(lo, Math.floor(spec.kMax * images + 1e-9));
  const k = lo + Math.floor(keyedRandom(spec.seed, instanceId)() * (hi - lo + 1));
  return spec.maxPerInstance === undefined ? k : Math.min(k, spec.maxPerInstance);
}

type HnswSearch = Extract<ShortlistSpec['search'], { method: 'hnsw' }>;

/**
 * The approximate search: every image of an instance A with m images and k to find asks
 * the HNSW graph for m + spread x k images (its own m are dropped), and score(A, B) is the
 * best cosine among the pairs found from A's side. A's list is offered only what A's own
 * images found, so no pair is offered twice.
 */
async function approximatePairs(set: InstanceMatrix, lists: RankedList[], search: HnswSearch, opts: Omit<HnswOptions, keyof HnswSearch | 'precision'> & { signal?: AbortSignal }): Promise<void> {
  const { recallSample: _, spread, ...hnsw } = search;
  const own = (r: number) => ({ start: set.starts[set.owner[r]!]!, end: set.starts[set.owner[r]! + 1]! });
  const found = await hnswTopk(set.matrix, { ...hnsw, ...opts, k: (r) => Math.ceil(spread * lists[set.owner[r]!]!.k), exclude: own });
  const best = new Map<number, { score: number; row: number; column: number }>();
  for (let a = 0; a < set.rows.length; a++) {
    best.clear();
    for (let row = set.starts[a]!; row < set.starts[a + 1]!; row++) {
      for (let i = found.offsets[row]!; i < found.offsets[row + 1]!; i++) {
        const [column, score] = [found.indices[i]!, found.scores[i]!];
        const b = set.owner[column]!;
        const seen = best.get(b);
        if (!seen || score > seen.score) best.set(b, { score, row, column });
      }
    }
    for (const [b, { score, row, column }] of best) lists[a]!.offer(score, b, row, column);
  }
}

/** Instance a's exact k best other instances by max image-pair cosine, best first, equal scores by the lower position. */
async function exactList(set: InstanceMatrix, a: number, k: number, opts: { threads?: number; signal?: AbortSignal }): Promise<number[]> {
  const list = new RankedList(k);
  const rows = Int32Array.from({ length: size(set, a) }, (_, i) => set.starts[a]! + i);
  const best = new Float64Array(set.rows.length).fill(-Infinity);
  await visitScoreBlocks(pickRows(set.matrix, rows), set.matrix, opts, ({ scores, rows: n, columns }) => {
    for (let i = 0; i < n; i++) for (let c = 0; c < columns; c++) best[set.owner[c]!] = Math.max(best[set.owner[c]!]!, scores[i * columns + c]!);
  });
  best.forEach((score, b) => { if (b !== a && size(set, b) > 0) list.offer(score, b, 0, 0); });
  return Array.from(list.ids.subarray(0, list.size));
}

/**
 * The instances searched together, in manifest order: every instance, or with sameCategory
 * the instances with images of each category (in order of first appearance).
 */
function searchGroups(set: InstanceMatrix, sameCategory: boolean): Int32Array[] {
  if (!sameCategory) return [Int32Array.from(set.rows.keys())];
  const members = new Map<string, number[]>();
  set.rows.forEach((row, i) => {
    if (size(set, i) === 0) return;
    const list = members.get(row.category);
    if (list) list.push(i);
    else members.set(row.category, [i]);
  });
  return [...members.values()].map((list) => Int32Array.from(list));
}

/**
 * Reduces upper-triangle blocks of whole instances to instance-pair scores. A block holds
 * all of A's rows and every later instance B's columns, so the max over A x B is final in
 * A's block; it is offered to A's list and to B's at once.
 */
class PairReducer {
  private readonly best: Float32Array;
  private readonly bestRow: Int32Array;
  private readonly bestColumn: Int32Array;
  /** Instances with images, in manifest order. */
  private readonly pool: Int32Array;

  constructor(private readonly set: InstanceMatrix, private readonly lists: RankedList[]) {
    const n = set.rows.length;
    [this.best, this.bestRow, this.bestColumn] = [new Float32Array(n), new Int32Array(n), new Int32Array(n)];
    this.pool = Int32Array.from(set.rows.keys()).filter((i) => size(set, i) > 0);
  }

  visit(block: ScoreBlock): void {
    const first = this.set.owner[block.start]!;
    const last = this.set.owner[block.start + block.rows - 1]!;
    for (let a = first; a <= last; a++) if (size(this.set, a) > 0) this.reduce(a, block);
  }

  /** The instances after a that a may be paired with. */
  private peers(a: number): Int32Array {
    const { pool } = this;
    let lo = 0;
    let hi = pool.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pool[mid]! <= a) lo = mid + 1;
      else hi = mid;
    }
    return pool.subarray(lo);
  }

  private reduce(a: number, block: ScoreBlock): void {
    const { set, best, bestRow, bestColumn } = this;
    const { scores, columns, columnStart } = block;
    const peers = this.peers(a);
    for (const b of peers) best[b] = -Infinity;
    for (let row = set.starts[a]!; row < set.starts[a + 1]!; row++) {
      const base = (row - block.start) * columns - columnStart;
      for (const b of peers) {
        const end = base + set.starts[b + 1]!;
        let max = best[b]!;
        let at = -1;
        for (let c = base + set.starts[b]!; c < end; c++) {
          const v = scores[c]!;
          if (v > max) {
            max = v;
            at = c;
          }
        }
        if (at < 0) continue;
        best[b] = max;
        bestRow[b] = row;
        bestColumn[b] = at - base;
      }
    }
    for (const b of peers) {
      if (best[b] === -Infinity) continue;
      this.lists[a]!.offer(best[b]!, b, bestRow[b]!, bestColumn[b]!);
      this.lists[b]!.offer(best[b]!, a, bestColumn[b]!, bestRow[b]!);
    }
  }
}

function itemsOf(set: InstanceMatrix, a: number, list: RankedList): ReviewItem[] {
  const anchor = set.rows[a]!;
  const items: ReviewItem[] = [];
  for (let i = 0; i < list.size; i++) {
    const other = set.rows[list.ids[i]!]!;
    items.push({
      id: `hn:${anchor.instance_id}|${other.instance_id}`,
      group: anchor.instance_id,
      score: Math.round(list.scores[i]! * 1e6) / 1e6,
      images: [set.images[list.first[i]!]!, set.images[list.second[i]!]!],
      question: SHORTLIST_QUESTION,
      metadata: {
        anchor: anchor.instance_id, candidate: other.instance_id, rank: i + 1, k: list.k,
        anchor_title: anchor.title, candidate_title: other.title,
        anchor_category: anchor.category, candidate_category: other.category,
      },
    });
  }
  return items;
}
