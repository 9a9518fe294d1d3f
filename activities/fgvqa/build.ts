import path from 'node:path';
import { Context } from '@temporalio/activity';
import { buildInputs, FGVQA_QUERIES_MEDIA_TYPE } from '../../engine/kinds/fgvqa.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { startHeartbeat } from '../similarity/heartbeat.js';
import { drawChecked, nearestChecked } from './checked-draw.js';
import { ImageChecker } from './image-check.js';
import { multiQuestion, pairQuestion } from './prompts.js';
import { readPublished, type PublishedQuery } from './published.js';
import { TooFewError } from './queries.js';
import type { SourceContext } from './source-files.js';
import { SOURCES, SourceError } from './sources.js';
import { invalidInput } from '../failures.js';
import { buildKind } from '../../engine/kinds/fgvqa.js';
import type { Implementation } from '../kind-implementation.js';

const PROBLEM_LINES = 20;

/** A query as written: generated ones carry their identities, published ones their `extra`. */
type QueryRow = Omit<PublishedQuery, 'extra'> & { identities?: string[]; extra?: Record<string, unknown> };

/**
 * `fgvqa/build`: a source dataset read in its own layout and turned into balanced queries,
 * or published FGVQA files taken as they are (`source: fgvqa`). Every image a query shows
 * was checked (inside the dataset folder, a readable image file) and is named by its copy
 * in the artifact store, so the queries' digest covers the images' bytes.
 */
export function createBuildFgvqa(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof buildKind> {
  return async function buildFgvqa(input: StageActivityInput) {
    const ctx = Context.current();
    const opts = parseInputs(buildInputs, input);
    const fail = (message: string): never => {
      throw invalidInput(`stage ${input.stageId} (fgvqa/build, ${opts.source}): ${message}`);
    };
    const problems: string[] = [];
    let skipped = 0;
    // Beats on a timer while the source is read (a large CSV, shards, Parquet) and images are embedded.
    const progress = { done: 0, total: 0, unit: 'images read' };
    const stopBeating = startHeartbeat(ctx, progress);
    const source: SourceContext = {
      store: deps.store,
      checker: await ImageChecker.open(deps.store, path.resolve(opts.root)),
      skip: (where, why) => {
        skipped++;
        if (problems.length < PROBLEM_LINES) problems.push(`${where}: ${why}`);
      },
      stored: () => { progress.done++; },
    };
    const counts: Record<string, number> = { identities: 0, images: 0, skipped: 0, pairs: 0, multi: 0 };
    let rows: QueryRow[];
    try {
      rows = opts.source === 'fgvqa' ? await readPublished(path.resolve(opts.root), source, opts.subsets) : await generated();
    } catch (err) {
      if (err instanceof SourceError) return fail(err.message);
      if (err instanceof TooFewError) return fail(`${err.message}${skipped ? ` (after leaving out ${skipped} image(s): ${problems.slice(0, 3).join('; ')})` : ''}`);
      throw err;
    } finally {
      stopBeating();
    }
    counts.skipped = skipped;

    async function generated(): Promise<QueryRow[]> {
      const info = SOURCES[opts.source]!;
      let groups = await info.read(path.resolve(opts.root), source);
      let neighbours: Map<string, string[]> | undefined;
      if (opts.negatives === 'nearest') {
        ({ neighbours, identities: groups } = await nearestChecked(groups, { model: opts.model, k: opts.nearest, signal: ctx.cancellationSignal }, source, progress));
      }
      const drawn = await drawChecked(groups, { ...opts, neighbours }, source, progress);
      counts.identities = drawn.identities.length;
      counts.images = drawn.identities.reduce((n, g) => n + g.images.length, 0);
      const numbers = { pair: 0, multi: 0 };
      return drawn.queries.map((q) => ({
        id: `${opts.source}-${q.type}-${String(++numbers[q.type]).padStart(5, '0')}`,
        source: opts.source, type: q.type, images: q.images,
        question: q.type === 'pair' ? pairQuestion(info.domain) : multiQuestion(info.domain),
        answer: q.answer, identities: q.identities,
      }));
    }

    const dir = deps.home.stageDir(input.runId, input.stageId);
    const ours = await JsonlWriter.open(path.join(dir, 'queries.jsonl'));
    const published = await JsonlWriter.open(path.join(dir, 'fgvqa.jsonl'));
    for (const q of rows) {
      await ours.write(q);
      await published.write({
        dataset_source: SOURCES[q.source]!.published, question: q.question, answer: q.answer, question_type: q.type === 'pair' ? 'pairwise' : 'multiple_choice',
        images: q.images, extra: q.extra ?? { id: q.id, identities: q.identities },
      });
      counts[q.type === 'pair' ? 'pairs' : 'multi']!++;
      counts[`answer_${q.answer}`] = (counts[`answer_${q.answer}`] ?? 0) + 1;
    }
    await Promise.all([ours.close(), published.close()]);
    if (!rows.length) fail(`no queries${skipped ? ` (${skipped} images left out: ${problems.slice(0, 3).join('; ')})` : ''}`);
    const outputs = {
      queries: { ...(await deps.store.putFile(ours.file, FGVQA_QUERIES_MEDIA_TYPE)), counts: { rows: rows.length } },
      published: { ...(await deps.store.putFile(published.file, FGVQA_QUERIES_MEDIA_TYPE)), counts: { rows: rows.length } },
      counts,
      problems: skipped > problems.length ? [...problems, `… and ${skipped - problems.length} more`] : problems,
    };
    return { outputs: outputs, attempt: ctx.info.attempt };
  };
}
