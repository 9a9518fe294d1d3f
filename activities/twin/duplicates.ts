import path from 'node:path';
import { Context } from '@temporalio/activity';
import { dedupeInputs } from '../../engine/kinds/candidates.js';
import type { JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { REVIEW_ITEMS_MEDIA_TYPE, type ReviewItem } from '../review/items.js';
import { forEachGroupScores } from '../similarity/groups.js';
import { reviewImage } from '../similarity/items.js';
import { loadEmbedded, type EmbeddedInstances } from '../similarity/load.js';
import { Scorer } from '../similarity/scorer.js';
import { TopList } from '../similarity/top-list.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';

interface PairEvidence {
  a: number;
  b: number;
  /** Flags raised from a's side and from b's side. */
  flags: [number, number];
  score: number;
  /** Best matrix rows: one of a's images, one of b's. */
  rows: [number, number];
}

/**
 * `twin/dedupe` (paper §3): each listing with m images flags the m highest image-to-image
 * similarities with images of other listings; flags between the same two listings make
 * one candidate pair. People (or an explicit policy) confirm; twin/merge merges.
 */
export function createDedupeCandidates(deps: { store: ArtifactStore; home: HomeLayout }) {
  return async function dedupeCandidates(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const opts = parseInputs(dedupeInputs, input);
    const e = await loadEmbedded(deps.store, opts, input);
    const pairs = new Map<string, PairEvidence>();
    let flags = 0;
    const scorer = await Scorer.open(e.matrix, { threads: opts.threads });
    const progress = { done: 0, total: e.rows.length, unit: 'listings' };
    const timer = setInterval(() => ctx.heartbeat({ progress: { ...progress } }), 200);
    try {
      await forEachGroupScores(scorer, e.matrix, e.groups, { signal: ctx.cancellationSignal }, (g, scoresOf) => {
        progress.done++;
        const top = flagsOf(e, g, scoresOf, opts.minScore);
        for (let i = 0; i < top.size; i++) {
          flags++;
          record(pairs, g, top.ids[i]!, top.extra[i]!, top.scores[i]!, e);
        }
      });
    } finally {
      clearInterval(timer);
      await scorer.release();
    }
    const items = [...pairs.values()].map((p) => toItem(p, e)).sort((x, y) => y.score! - x.score! || (x.id < y.id ? -1 : 1));
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'candidates.jsonl'));
    for (const item of items) await out.write(item);
    await out.close();
    const candidates = await deps.store.putFile(out.file, REVIEW_ITEMS_MEDIA_TYPE);
    candidates.counts = { rows: items.length };
    const counts = { products: e.rows.length, images: e.matrix.rows - e.unmatched, flags, candidates: items.length };
    return { outputs: { candidates, counts } as unknown as JsonObject, attempt: ctx.info.attempt };
  };
}

/** The m best (score, column) over listing g's rows against other listings' rows; extra = g's row. */
function flagsOf(e: EmbeddedInstances, g: number, scoresOf: (i: number) => Float32Array, minScore?: number): TopList {
  const mine = e.groups[g]!;
  const top = new TopList(mine.length);
  const floorMin = minScore ?? -Infinity;
  mine.forEach((r, i) => {
    const s = scoresOf(i);
    for (let c = 0; c < s.length; c++) {
      const v = s[c]!;
      if (v < floorMin || v < top.floor) continue;
      const owner = e.rowInstance[c]!;
      if (owner === g || owner < 0) continue;
      top.offer(v, c, r);
    }
  });
  return top;
}

function record(pairs: Map<string, PairEvidence>, g: number, col: number, row: number, score: number, e: EmbeddedInstances): void {
  const other = e.rowInstance[col]!;
  const [a, b] = g < other ? [g, other] : [other, g];
  const key = `${a}|${b}`;
  const p = pairs.get(key) ?? { a, b, flags: [0, 0], score: -Infinity, rows: [-1, -1] };
  p.flags[g === a ? 0 : 1]++;
  if (score > p.score) {
    p.score = score;
    p.rows = g === a ? [row, col] : [col, row];
  }
  pairs.set(key, p);
}

function toItem(p: PairEvidence, e: EmbeddedInstances): ReviewItem {
  const [x, y] = [e.rows[p.a]!, e.rows[p.b]!];
  const [first, second] = x.instance_id < y.instance_id ? [x, y] : [y, x];
  const images = first === x ? [reviewImage(e, p.rows[0]), reviewImage(e, p.rows[1])] : [reviewImage(e, p.rows[1]), reviewImage(e, p.rows[0])];
  return {
    id: `dup:${first.instance_id}|${second.instance_id}`,
    score: Math.round(p.score * 1e6) / 1e6,
    images,
    question: 'Are these two listings the same product (the same object instance, possibly photographed differently)?',
    metadata: {
      instance_1: first.instance_id, instance_2: second.instance_id,
      title_1: first.title, title_2: second.title,
      category_1: first.category, category_2: second.category,
      asins_1: first.asins, asins_2: second.asins,
      flags: p.flags[0] + p.flags[1],
    },
  };
}
