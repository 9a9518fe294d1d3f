import path from 'node:path';
import { Context } from '@temporalio/activity';
import { FGVQA_RESULTS_MEDIA_TYPE, scoreInputs } from '../../engine/kinds/fgvqa.js';
import type { ArtifactStore } from '../artifact-store.js';
import { describeProblems, JsonlWriter, readJsonl, type JsonlProblem, problemText } from '../data/jsonl.js';
import { pathOrArtifactFile } from '../data/manifest-input.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { isCorrect, parseAnswer, type QueryType } from './answers.js';
import { summarize, type ScoredQuery } from './summary.js';
import { invalidInput } from '../failures.js';
import { scoreKind } from '../../engine/kinds/fgvqa.js';
import type { Implementation } from '../kind-implementation.js';

/** One FGVQA query as `fgvqa/build` writes it (the fields scoring needs). */
export interface Query {
  id: string;
  source: string;
  type: QueryType;
  answer: string;
}

const fail = (input: StageActivityInput, message: string): never => {
  throw invalidInput(`stage ${input.stageId} (${input.uses}): ${message}`);
};

/** Queries of one or more files (e.g. one per source), in order; an id may appear only once in all. */
export async function readQueries(files: readonly string[], input: StageActivityInput): Promise<Query[]> {
  const problems: JsonlProblem[] = [];
  const queries: Query[] = [];
  const seen = new Set<string>();
  for (const file of files) for await (const { value: q, line } of readJsonl<Record<string, unknown>>(file, (p) => problems.push(p))) {
    const type = q?.type;
    const answer = typeof q?.answer === 'number' ? String(q.answer) : q?.answer;
    const wrong = typeof q?.id !== 'string' || !q.id ? 'a query needs a string id'
      : seen.has(q.id) ? `query id ${q.id} appears twice`
      : typeof q.source !== 'string' || !q.source ? `query ${q.id} needs a source`
      : type !== 'pair' && type !== 'multi' ? `query ${q.id}: type must be "pair" or "multi"`
      : typeof answer !== 'string' || !(type === 'pair' ? /^(yes|no)$/i : /^[0-3]$/).test(answer.trim()) ? `query ${q.id}: answer must be ${type === 'pair' ? 'yes or no' : '0-3'}`
      : undefined;
    if (wrong) problems.push({ file, line, message: wrong });
    else {
      seen.add(q.id as string);
      queries.push({ id: q.id as string, source: q.source as string, type: type as QueryType, answer: (answer as string).trim().toLowerCase() });
    }
  }
  if (problems.length) fail(input, `with.queries has ${describeProblems(problems)}${files.length > 1 ? ` in ${[...new Set(problems.map((p) => path.basename(p.file)))].join(', ')}` : ''}`);
  if (!queries.length) fail(input, 'with.queries holds no queries');
  return queries;
}

export interface PredictionRead {
  outputs: Map<string, string>;
  problems: string[];
  counts: { predictions: number; unknown: number; duplicates: number; malformed: number };
}

/**
 * Predictions by query id. Nothing here stops the scoring: a malformed line, an id that
 * is no query and a repeated id (the first one counts) are reported with line numbers.
 */
export async function readPredictions(files: readonly string[], known: ReadonlySet<string>): Promise<PredictionRead> {
  const outputs = new Map<string, string>();
  const problems: string[] = [];
  const counts = { predictions: 0, unknown: 0, duplicates: 0, malformed: 0 };
  for (const file of files) {
    const note = (line: number, message: string) => {
      if (problems.length < 20) problems.push(`${path.basename(file)}:${line}: ${message}`);
    };
    for await (const { value: p, line } of readJsonl<Record<string, unknown>>(file, (bad) => { counts.malformed++; note(bad.line, problemText(bad)); })) {
      if (typeof p?.id !== 'string' || typeof p.output !== 'string') {
        counts.malformed++;
        note(line, 'a prediction needs a string "id" and a string "output"');
      } else if (!known.has(p.id)) {
        counts.unknown++;
        note(line, `no query has id ${p.id}`);
      } else if (outputs.has(p.id)) {
        counts.duplicates++;
        note(line, `a second prediction for ${p.id}; the first one counts`);
      } else {
        outputs.set(p.id, p.output);
        counts.predictions++;
      }
    }
  }
  return { outputs, problems, counts };
}

/** Each query scored by the default and the strict rules; a query without a prediction is wrong. */
export function scoreQueries(queries: readonly Query[], outputs: ReadonlyMap<string, string>): { rows: ScoredQuery[]; strict: ScoredQuery[] } {
  const rows: ScoredQuery[] = [];
  const strict: ScoredQuery[] = [];
  for (const q of queries) {
    const output = outputs.get(q.id);
    for (const [list, isStrict] of [[rows, false], [strict, true]] as const) {
      const parsed = output === undefined ? null : parseAnswer(q.type, output, isStrict);
      list.push({ id: q.id, source: q.source, type: q.type, parsed, answer: q.answer, correct: isCorrect(parsed, q.answer), ...(output === undefined ? { missing: true as const } : {}) });
    }
  }
  return { rows, strict };
}

export function createScoreFgvqa(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof scoreKind> {
  return async function scoreFgvqa(input: StageActivityInput) {
    const opts = parseInputs(scoreInputs, input);
    const files = (value: typeof opts.queries, field: string) => Promise.all((Array.isArray(value) ? value : [value])
      .map((v, i) => pathOrArtifactFile(deps.store, v, input, Array.isArray(value) ? `${field}[${i}]` : field)));
    const queries = await readQueries(await files(opts.queries, 'with.queries'), input);
    const read = await readPredictions(await files(opts.predictions, 'with.predictions'), new Set(queries.map((q) => q.id)));
    if (read.outputs.size === 0) {
      fail(input, `with.predictions holds no usable prediction for these queries${read.problems.length ? ` (${read.problems.slice(0, 3).join('; ')})` : ''}`);
    }
    const { rows, strict } = scoreQueries(queries, read.outputs);
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'results.jsonl'));
    for (const row of rows) await out.write(row);
    await out.close();
    const results = await deps.store.putFile(out.file, FGVQA_RESULTS_MEDIA_TYPE);
    const bootstrap = { resamples: opts.resamples, confidence: opts.confidence, seed: opts.seed };
    const missing = rows.filter((r) => r.missing).length;
    const outputs = {
      results: out.file,
      files: { results: { ...results, counts: { rows: rows.length } } },
      summary: summarize(rows, bootstrap),
      strict: summarize(strict, bootstrap),
      counts: { queries: queries.length, scored: rows.length - missing, missing, ...read.counts },
      problems: read.problems,
    };
    return { outputs: outputs, attempt: Context.current().info.attempt };
  };
}
