import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { FGVQA_PREDICTIONS_MEDIA_TYPE, predictInputs, type PredictInputs } from '../../engine/kinds/fgvqa.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { readJsonl, problemText } from '../data/jsonl.js';
import { pathOrArtifactFile } from '../data/manifest-input.js';
import { mapBounded } from '../data/concurrency.js';
import type { HomeLayout } from '../home.js';
import type { StageLogs } from '../stage-log.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import type { ChatOptions } from './chat-client.js';
import { AnswerLog, askEach } from './answer-log.js';
import { runLmmsEval } from './predict-lmms-eval.js';
import { answerWithBaseline } from './predict-baseline.js';
import { cancelled, incomplete, invalidInput } from '../failures.js';
import { predictKind } from '../../engine/kinds/fgvqa.js';
import type { Implementation } from '../kind-implementation.js';

export interface PredictQuery {
  id: string;
  question: string;
  images: string[];
}

/** What a backend gets: the queries still unanswered, and where each answer goes. */
export interface BackendRun {
  input: StageActivityInput;
  opts: PredictInputs;
  /** The queries file on this host (to refuse calibrating on it). */
  queriesFile: string;
  todo: PredictQuery[];
  /** The stage folder. */
  dir: string;
  /** Keeps one answer: appended to the stage's partial predictions file at once. */
  keep(id: string, output: string): void;
  /** Records a query that got no answer; the stage fails after the backend returns, keeping the rest. */
  fail(id: string, error: string): void;
  /** How many of `todo` are answered so far, for heartbeats, when answers arrive in one go at the end. */
  progress(done: number): void;
  signal: AbortSignal;
  attempt: number;
}

export interface BackendResult {
  counts: Record<string, number>;
  /** Backend-specific outputs (lmmsEval, baseline). */
  outputs?: JsonObject;
}

export type PredictDeps = {
  store: ArtifactStore;
  home: HomeLayout;
  /** Where the lmms-eval backend's log goes. @default this host's log files */
  logs?: StageLogs;
};

/**
 * `fgvqa/predict`: every query to the model. Each answer is appended to the stage
 * folder's `predictions.partial.<answerFingerprint>.jsonl` the moment the backend has it, so a crashed worker,
 * a cancelled run or a failed attempt resumes with only the queries still unanswered.
 * Queries that cannot be answered fail the stage with a report; what was answered stays
 * for `twinflow retry`.
 */
export function createPredictFgvqa(deps: PredictDeps): Implementation<typeof predictKind> {
  const backends: Record<PredictInputs['backend'], (run: BackendRun) => Promise<BackendResult>> = {
    openai: askEndpoint,
    'lmms-eval': (run) => runLmmsEval(deps, run),
    'embedding-baseline': (run) => answerWithBaseline(deps, run),
  };
  return async function predictFgvqa(input: StageActivityInput) {
    const ctx = Context.current();
    const opts = parseInputs(predictInputs, input);
    const { file: queriesFile, queries } = await readPredictQueries(deps.store, opts.queries, input);
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    // Answers resume only for the same questions to the same model: a retry with another model,
    // threshold or token budget starts over (a moved endpoint, concurrency or timeout does not).
    const partial = path.join(dir, `predictions.partial.${answerFingerprint(opts)}.jsonl`);
    const log = await AnswerLog.open(partial, new Set(queries.map((q) => q.id)));
    const answers = log.answers;
    const resumed = answers.size;
    const todo = await withLocalImages(deps.store, queries.filter((q) => !answers.has(q.id)));
    const failures: Array<{ id: string; error: string }> = [];
    let reported = 0;
    let result: BackendResult;
    const beat = () => ctx.heartbeat({
      progress: { done: Math.max(answers.size, resumed + reported), total: queries.length, unit: 'queries', message: failures.length ? `${failures.length} failed` : undefined },
    });
    const ticker = setInterval(beat, 2000);
    try {
      result = await backends[opts.backend]({
        input, opts, queriesFile, todo, dir, signal: ctx.cancellationSignal, attempt: ctx.info.attempt,
        keep: (id, output) => log.keep(id, output),
        fail: (id, error) => failures.push({ id, error }),
        progress: (done) => { reported = done; },
      });
    } finally {
      clearInterval(ticker);
      await log.close();
    }
    beat();
    if (ctx.cancellationSignal.aborted) throw cancelled(`cancelled with ${answers.size} of ${queries.length} answers kept`);
    if (failures.length) {
      // In query order, whatever order the retries ended in.
      const order = new Map(queries.map((q, i) => [q.id, i]));
      failures.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      const first = failures.slice(0, 3).map((f) => `${f.id}: ${f.error}`).join('; ');
      throw incomplete(`stage ${input.stageId} (fgvqa/predict): ${failures.length} of ${queries.length} queries got no answer (${first}); ` +
          `the ${answers.size} answers are kept in ${partial}: retry the stage to ask only the rest`);
    }
    const final = path.join(dir, 'predictions.jsonl');
    await fs.writeFile(final, queries.map((q) => `${JSON.stringify({ id: q.id, output: answers.get(q.id) })}\n`).join(''));
    const predictions = await deps.store.putFile(final, FGVQA_PREDICTIONS_MEDIA_TYPE);
    const outputs = {
      predictions: { ...predictions, counts: { rows: queries.length } },
      counts: { queries: queries.length, answered: answers.size, resumed, ...result.counts },
      ...result.outputs,
    };
    return { outputs: outputs, attempt: ctx.info.attempt };
  };
}

/** What decides the answers: the queries, the backend and its model settings. */
export function answerFingerprint(opts: PredictInputs): string {
  const queries = typeof opts.queries === 'string' ? opts.queries : opts.queries.sha256;
  const model = opts.backend === 'openai' ? { model: opts.model }
    : opts.backend === 'lmms-eval' ? { model: opts.lmmsEval?.model, modelArgs: opts.lmmsEval?.modelArgs, ...(opts.lmmsEval?.pretrained ? { pretrained: opts.lmmsEval.pretrained.sha256 } : {}) }
    : { baseline: opts.baseline };
  return createHash('sha256').update(JSON.stringify({ queries, backend: opts.backend, maxTokens: opts.maxTokens, ...model })).digest('hex').slice(0, 12);
}

/** Backend openai: `concurrency` requests at a time, each answer kept as it arrives. */
async function askEndpoint(run: BackendRun): Promise<BackendResult> {
  const { opts } = run;
  const chat: ChatOptions = {
    endpoint: opts.endpoint!, model: opts.model!, apiKey: process.env[opts.apiKeyEnv] || undefined, maxTokens: opts.maxTokens,
    timeoutMs: opts.timeoutSeconds * 1000, retries: opts.retries, signal: run.signal,
  };
  return { counts: await askEach(chat, run.todo, opts.concurrency, { keep: run.keep, fail: run.fail }) };
}

/**
 * The queries with each image as a file on this host: FGVQA builds name images by artifact
 * URI (fetched from the store, on any host); a queries file a person wrote may name host paths.
 */
async function withLocalImages(store: ArtifactStore, queries: PredictQuery[]): Promise<PredictQuery[]> {
  const local = (image: string) => (image.startsWith('artifact:sha256:') ? store.file(image) : image);
  return mapBounded(queries, 16, async (q) => ({ ...q, images: await Promise.all(q.images.map(local)) }));
}

async function readPredictQueries(store: ArtifactStore, value: string | ArtifactRef, input: StageActivityInput): Promise<{ file: string; queries: PredictQuery[] }> {
  const file = await pathOrArtifactFile(store, value, input, 'with.queries');
  const queries: PredictQuery[] = [];
  const problems: string[] = [];
  for await (const { value: q, line } of readJsonl<PredictQuery>(file, (p) => problems.push(`line ${p.line}: ${problemText(p)}`))) {
    if (typeof q?.id !== 'string' || typeof q.question !== 'string' || !Array.isArray(q.images)) problems.push(`line ${line}: a query needs id, question and images`);
    else queries.push({ id: q.id, question: q.question, images: q.images.map(String) });
  }
  if (problems.length) {
    throw invalidInput(`stage ${input.stageId} (fgvqa/predict): with.queries has ${problems.length} bad line(s): ${problems.slice(0, 5).join('; ')}`);
  }
  return { file, queries };
}
