/*
 * fgvqa/score on files written by the test:
 * - accuracy per source and type, the mean of totals, strict beside default, bootstrap intervals
 *   around each number, the same intervals for the same seed
 * - bad predictions (malformed lines, unknown ids, repeated ids, missing queries) are reported with
 *   line numbers and the scoring goes on; missing predictions count as wrong
 * - malformed queries and predictions with nothing usable fail the stage, saying where
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { Summary } from '../../activities/fgvqa/summary.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const env = activitiesInTempHome('score');

async function file(name: string, lines: Array<unknown | string>): Promise<string> {
  const p = path.join(env.home.root, name);
  await fs.writeFile(p, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return p;
}

const score = (w: Record<string, unknown>) => runStage(env.acts['fgvqa/score'], 'fgvqa/score', w);

/** cub: 4 pair + 4 multi; met: 2 pair. */
const QUERIES = [
  ...['yes', 'no', 'yes', 'no'].map((answer, i) => ({ id: `cub-p${i}`, source: 'cub', type: 'pair', images: ['a', 'b'], question: 'q', answer })),
  ...[0, 1, 2, 3].map((answer, i) => ({ id: `cub-m${i}`, source: 'cub', type: 'multi', images: ['a', 'b', 'c', 'd'], question: 'q', answer })),
  ...['yes', 'no'].map((answer, i) => ({ id: `met-p${i}`, source: 'met', type: 'pair', images: ['a', 'b'], question: 'q', answer })),
];

it('scores per source and type with strict beside default, and reports bad predictions without stopping', async () => {
  const queries = await file('queries.jsonl', QUERIES);
  const predictions = await file('predictions.jsonl', [
    { id: 'cub-p0', output: 'Same bird. <answer>yes</answer>' },
    { id: 'cub-p1', output: 'Different wing bars, so no.' },
    { id: 'cub-p2', output: '<answer>no</answer>' },
    '{"id": "cub-p3", "output": ',
    { id: 'cub-m0', output: '<answer>0</answer>' },
    { id: 'cub-m1', output: 'Only the second one: 1' },
    { id: 'cub-m2', output: '<answer>2</answer>' },
    { id: 'cub-m3', output: '<answer>3</answer>' },
    { id: 'cub-m3', output: '<answer>0</answer>' },
    { id: 'met-p0', output: '<answer>Yes</answer>' },
    { id: 'nobody', output: 'yes' },
    { id: 'met-p1', answer: 'no' },
  ]);
  const result = await score({ queries, predictions, resamples: 500 });
  const out = result.outputs as unknown as { summary: Summary; strict: Summary; counts: Record<string, number>; problems: string[]; results: string };
  expect(out.summary.sources.cub).toMatchObject({ pair: { accuracy: 50, correct: 2, n: 4, missing: 1 }, multi: { accuracy: 100, n: 4 }, total: { accuracy: 75 } });
  expect(out.summary.sources.met).toMatchObject({ pair: { accuracy: 50, missing: 1 }, total: { accuracy: 50 } });
  expect(out.summary.mean.accuracy).toBe(62.5);
  expect(out.strict.sources.cub).toMatchObject({ pair: { accuracy: 25 }, multi: { accuracy: 75 }, total: { accuracy: 50 } });
  expect(out.counts).toEqual({ queries: 10, scored: 8, missing: 2, predictions: 8, unknown: 1, duplicates: 1, malformed: 2 });
  expect(out.problems).toEqual([
    expect.stringMatching(/predictions.jsonl:4: not valid JSON/),
    expect.stringMatching(/predictions.jsonl:9: a second prediction for cub-m3; the first one counts/),
    expect.stringMatching(/predictions.jsonl:11: no query has id nobody/),
    expect.stringMatching(/predictions.jsonl:12: a prediction needs a string "id" and a string "output"/),
  ]);
  for (const summary of [out.summary, out.strict]) {
    for (const cell of Object.values(summary.sources).flatMap((s) => [s.pair, s.multi, s.total]).filter(Boolean)) {
      expect(cell!.ci[0]).toBeLessThanOrEqual(cell!.accuracy);
      expect(cell!.ci[1]).toBeGreaterThanOrEqual(cell!.accuracy);
    }
  }
  expect(out.summary.sources.cub!.total.ci[1] - out.summary.sources.cub!.total.ci[0]).toBeGreaterThan(10);
  const rows = (await fs.readFile(out.results, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(rows[1]).toEqual({ id: 'cub-p1', source: 'cub', type: 'pair', parsed: 'no', answer: 'no', correct: true });
  expect(rows[3]).toMatchObject({ id: 'cub-p3', parsed: null, correct: false, missing: true });
  const again = (await score({ queries, predictions, resamples: 500 })).outputs as unknown as { summary: Summary };
  expect(again.summary).toEqual(out.summary);
});

it('fails on malformed queries and on predictions with nothing usable, saying where', async () => {
  const queries = await file('bad-queries.jsonl', [QUERIES[0], { ...QUERIES[1], type: 'triple' }, { ...QUERIES[4], answer: 7 }, QUERIES[0]]);
  const predictions = await file('p.jsonl', [{ id: 'cub-p0', output: 'yes' }]);
  const bad = await failure(score({ queries, predictions }));
  expect(bad.message).toMatch(/with.queries has 3 malformed line\(s\) \(line 2: query cub-p1: type must be "pair" or "multi"; line 3: query cub-m0: answer must be 0-3; line 4: query id cub-p0 appears twice\)/);
  const none = await failure(score({ queries: await file('q.jsonl', QUERIES), predictions: await file('none.jsonl', [{ id: 'x', output: 'yes' }]) }));
  expect(none.message).toMatch(/holds no usable prediction for these queries \(none.jsonl:1: no query has id x\)/);
  const missing = await failure(score({ queries: path.join(env.home.root, 'nope.jsonl'), predictions }));
  expect(missing.message).toMatch(/with.queries: .*nope.jsonl does not exist/);
});

it('reads lists of query and prediction files (one per source) as one', async () => {
  const cubQueries = await file('cub-queries.jsonl', QUERIES.filter((q) => q.source === 'cub'));
  const metQueries = await file('met-queries.jsonl', QUERIES.filter((q) => q.source === 'met'));
  const answers = QUERIES.map((q) => ({ id: q.id, source: q.source, output: `<answer>${q.answer}</answer>` }));
  answers[0]!.output = '<answer>no</answer>';
  const cubPredictions = await file('cub-predictions.jsonl', answers.filter((a) => a.source === 'cub').map(({ id, output }) => ({ id, output })));
  const metPredictions = await file('met-predictions.jsonl', answers.filter((a) => a.source === 'met').map(({ id, output }) => ({ id, output })));
  const out = (await score({ queries: [cubQueries, metQueries], predictions: [cubPredictions, metPredictions], resamples: 200 })).outputs as unknown as { summary: Summary; counts: Record<string, number> };
  expect(out.summary.sources.cub).toMatchObject({ pair: { accuracy: 75 }, multi: { accuracy: 100 }, total: { accuracy: 87.5 } });
  expect(out.summary.sources.met).toMatchObject({ total: { accuracy: 100 } });
  expect(out.counts).toMatchObject({ queries: 10, scored: 10, missing: 0 });
  const twice = await failure(score({ queries: [cubQueries, cubQueries], predictions: [cubPredictions] }));
  expect(twice.message).toMatch(/with.queries has 8 malformed line\(s\) \(line 1: query id cub-p0 appears twice.* in cub-queries.jsonl/);
  const gone = await failure(score({ queries: [cubQueries, path.join(env.home.root, 'gone.jsonl')], predictions: [cubPredictions] }));
  expect(gone.message).toMatch(/with\.queries\[1\]: .*gone\.jsonl does not exist/);
});
