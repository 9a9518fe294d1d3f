import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { buildInputs, FGVQA_QUERIES_MEDIA_TYPE } from '../../engine/kinds/fgvqa.js';
import type { JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';
import { multiQuestion, pairQuestion } from './prompts.js';
import { makeQueries, TooFewError } from './queries.js';
import { SOURCES, SourceError } from './sources.js';

/** `fgvqa/build`: a source dataset read in its own layout, turned into balanced queries. */
export function createBuildFgvqa(deps: { store: ArtifactStore; home: HomeLayout }) {
  return async function buildFgvqa(input: StageActivityInput): Promise<StageActivityResult> {
    const opts = parseInputs(buildInputs, input);
    const source = SOURCES[opts.source]!;
    const fail = (message: string): never => {
      throw ApplicationFailure.create({ type: 'InvalidStageInput', nonRetryable: true, message: `stage ${input.stageId} (fgvqa/build, ${opts.source}): ${message}` });
    };
    let queries;
    let identities = 0;
    let images = 0;
    try {
      const groups = await source.read(path.resolve(opts.root));
      identities = groups.length;
      images = groups.reduce((n, g) => n + g.images.length, 0);
      queries = makeQueries(groups, opts);
    } catch (err) {
      if (err instanceof SourceError || err instanceof TooFewError) return fail(err.message);
      throw err;
    }
    const dir = deps.home.stageDir(input.runId, input.stageId);
    const rows = await JsonlWriter.open(path.join(dir, 'queries.jsonl'));
    const published = await JsonlWriter.open(path.join(dir, 'fgvqa.jsonl'));
    const counts: Record<string, number> = { identities, images, pairs: 0, multi: 0 };
    const numbers = { pair: 0, multi: 0 };
    for (const q of queries) {
      const n = ++numbers[q.type];
      const question = q.type === 'pair' ? pairQuestion(source.domain) : multiQuestion(source.domain);
      const id = `${opts.source}-${q.type}-${String(n).padStart(5, '0')}`;
      await rows.write({ id, source: opts.source, type: q.type, images: q.images, question, answer: q.answer, identities: q.identities });
      await published.write({
        dataset_source: source.published, question, answer: q.answer, question_type: q.type === 'pair' ? 'pairwise' : 'multiple_choice',
        images: q.images, extra: { id, identities: q.identities },
      });
      counts[q.type === 'pair' ? 'pairs' : 'multi']!++;
      counts[`answer_${q.answer}`] = (counts[`answer_${q.answer}`] ?? 0) + 1;
    }
    await Promise.all([rows.close(), published.close()]);
    const outputs = {
      queries: { ...(await deps.store.putFile(rows.file, FGVQA_QUERIES_MEDIA_TYPE)), counts: { rows: queries.length } },
      published: { ...(await deps.store.putFile(published.file, FGVQA_QUERIES_MEDIA_TYPE)), counts: { rows: queries.length } },
      counts,
    };
    return { outputs: outputs as unknown as JsonObject, attempt: Context.current().info.attempt };
  };
}
