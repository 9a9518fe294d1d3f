import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { z } from 'zod';
import { shortlistInputs } from '../../engine/kinds/candidates.js';
import type { JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { REVIEW_ITEMS_MEDIA_TYPE, type ReviewItem } from '../review/items.js';
import { forEachGroupScores } from '../similarity/groups.js';
import { hashString, reviewImage } from '../similarity/items.js';
import { loadEmbedded, type EmbeddedInstances } from '../similarity/load.js';
import { Scorer } from '../similarity/scorer.js';
import { TopList } from '../similarity/top-list.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';
import { seededRandom } from './pairs.js';

type ShortlistOptions = z.infer<typeof shortlistInputs>;

/**
 * `twin/shortlist` (paper §3): for each instance, the k most similar other instances,
 * where an instance pair's score is the highest cosine between any of their images
 * (exact: every score is seen once, reduced per instance) and k is drawn uniformly from
 * [kMin x m, kMax x m] by a generator keyed by (seed, instance id), so adding an
 * instance never changes another's k.
 */
export function createShortlistHardNegatives(deps: { store: ArtifactStore; home: HomeLayout }) {
  return async function shortlistHardNegatives(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const opts = parseInputs(shortlistInputs, input);
    const e = await loadEmbedded(deps.store, opts, input);
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'candidates.jsonl'));
    const lists = new Map<number, ReviewItem[]>();
    const scorer = await Scorer.open(e.matrix, { threads: opts.threads });
    const progress = { done: 0, total: e.rows.length, unit: 'instances' };
    const timer = setInterval(() => ctx.heartbeat({ progress: { ...progress } }), 200);
    const best = new Float32Array(e.rows.length);
    const bestRow = new Int32Array(e.rows.length);
    const bestCol = new Int32Array(e.rows.length);
    try {
      await forEachGroupScores(scorer, e.matrix, e.groups, { signal: ctx.cancellationSignal }, (g, scoresOf) => {
        progress.done++;
        bestPerInstance(e, g, scoresOf, best, bestRow, bestCol);
        lists.set(g, shortlist(e, g, opts, best, bestRow, bestCol));
      });
      // Items go out in manifest order, whatever order the blocks were scored in.
      for (let g = 0; g < e.rows.length; g++) for (const item of lists.get(g) ?? []) await out.write(item);
    } finally {
      clearInterval(timer);
      await scorer.release();
      await out.close();
    }
    const candidates = await deps.store.putFile(out.file, REVIEW_ITEMS_MEDIA_TYPE);
    candidates.counts = { rows: out.rows };
    const counts = { instances: e.rows.length, candidates: out.rows };
    return { outputs: { candidates, counts } as unknown as JsonObject, attempt: ctx.info.attempt };
  };
}

/** Instance g's best score against every instance, with the rows that made it. */
function bestPerInstance(
  e: EmbeddedInstances, g: number, scoresOf: (i: number) => Float32Array,
  best: Float32Array, bestRow: Int32Array, bestCol: Int32Array,
): void {
  best.fill(-Infinity);
  const owner = e.rowInstance;
  e.groups[g]!.forEach((r, i) => {
    const s = scoresOf(i);
    for (let c = 0; c < s.length; c++) {
      const j = owner[c]!;
      if (j < 0 || s[c]! <= best[j]!) continue;
      best[j] = s[c]!;
      bestRow[j] = r;
      bestCol[j] = c;
    }
  });
}

/** How many candidates instance g gets: uniform on [kMin m, kMax m], keyed by (seed, id). */
export function drawK(instanceId: string, images: number, opts: Pick<ShortlistOptions, 'seed' | 'kMin' | 'kMax'>): number {
  const lo = Math.floor(opts.kMin * images);
  const hi = Math.floor(opts.kMax * images);
  const random = seededRandom(hashString(instanceId, opts.seed));
  return lo + Math.floor(random() * (hi - lo + 1));
}

function shortlist(
  e: EmbeddedInstances, g: number, opts: ShortlistOptions,
  best: Float32Array, bestRow: Int32Array, bestCol: Int32Array,
): ReviewItem[] {
  const anchor = e.rows[g]!;
  const real = anchor.images.filter((im) => im.role !== 'generated').length;
  let k = drawK(anchor.instance_id, real, opts);
  if (opts.maxPerInstance !== undefined) k = Math.min(k, opts.maxPerInstance);
  const top = new TopList(k);
  for (let j = 0; j < best.length; j++) {
    if (j === g || best[j] === -Infinity) continue;
    if (opts.sameCategory && e.rows[j]!.category !== anchor.category) continue;
    top.offer(best[j]!, j);
  }
  const items: ReviewItem[] = [];
  for (let i = 0; i < top.size; i++) {
    const j = top.ids[i]!;
    const other = e.rows[j]!;
    items.push({
      id: `hn:${anchor.instance_id}|${other.instance_id}`,
      group: anchor.instance_id,
      score: Math.round(top.scores[i]! * 1e6) / 1e6,
      images: [reviewImage(e, bestRow[j]!), reviewImage(e, bestCol[j]!)],
      question: 'Is the second a hard negative for the first: a different object instance that looks very much alike?',
      metadata: {
        anchor: anchor.instance_id, candidate: other.instance_id, rank: i + 1, k,
        anchor_title: anchor.title, candidate_title: other.title,
        anchor_category: anchor.category, candidate_category: other.category,
      },
    });
  }
  return items;
}
