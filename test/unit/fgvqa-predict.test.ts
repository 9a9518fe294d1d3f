/*
 * fgvqa/predict against a scripted OpenAI-compatible test server (test/support/scripted-chat-server.ts):
 * - one user message with the question and every image as a data URL, greedy, 1,024 new tokens,
 *   the API key from the environment as a Bearer token and nowhere in the outputs
 * - never more requests in flight than `concurrency`
 * - 500, 429 (Retry-After) and garbage answers are retried; answers arrive in query order
 * - queries that never get an answer fail the stage with a report, and a retry asks only those
 * - a hanging endpoint is cut off by the request timeout
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { fourImages } from '../support/fgvqa-fixtures.js';
import { startScriptedChatServer, type SeenRequest } from '../support/scripted-chat-server.js';

const env = activitiesInTempHome('predict');
let queries: string;
const ids = Array.from({ length: 12 }, (_, i) => `q${i}`);

beforeAll(async () => {
  const images = await fourImages(path.join(env.home.root, 'images'));
  queries = path.join(env.home.root, 'queries.jsonl');
  await fs.writeFile(queries, ids.map((id, i) => JSON.stringify({ id, source: 'cub', type: i < 8 ? 'pair' : 'multi', question: `question ${id}`, images: i < 8 ? images.slice(0, 2) : images, answer: 'yes' })).join('\n') + '\n');
  process.env.TEST_FGVQA_KEY = 'sk-test-secret';
});
afterAll(() => { delete process.env.TEST_FGVQA_KEY; });

const idOf = (req: SeenRequest) => req.body.messages[0]!.content[0]!.text!.replace('question ', '');
/** Each test predicts as its own stage, so answers kept by one never resume another. */
const predict = (stageId: string, w: Record<string, unknown>) =>
  runStage(env.acts['fgvqa/predict'], 'fgvqa/predict', { queries, model: 'qwen2.5-vl-3b', apiKeyEnv: 'TEST_FGVQA_KEY', ...w }, stageId);

it('asks every query with its images, within the concurrency, retrying 500, 429 and garbage', async () => {
  const tries = new Map<string, number>();
  const server = await startScriptedChatServer((req) => {
    const id = idOf(req);
    const n = (tries.get(id) ?? 0) + 1;
    tries.set(id, n);
    if (id === 'q3' && n === 1) return { status: 500 };
    if (id === 'q4' && n === 1) return { status: 429, headers: { 'Retry-After': '1' } };
    if (id === 'q5' && n === 1) return { raw: '<html>bad gateway</html>' };
    return { content: `Because. <answer>${id}</answer>`, delayMs: 40 };
  });
  try {
    const result = await predict('a', { endpoint: server.url, concurrency: 3 });
    const out = result.outputs as unknown as { predictions: ArtifactRef; counts: Record<string, number> };
    const rows = await jsonlRows<{ id: string; output: string }>(new ArtifactStore(env.home.artifactsDir), out.predictions);
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows[4]!.output).toBe('Because. <answer>q4</answer>');
    expect(out.counts).toMatchObject({ queries: 12, answered: 12, resumed: 0, requests: 15, retries: 3 });
    expect(server.maxInFlight).toBe(3);
    const first = server.seen[0]!;
    expect(first.path).toBe('/v1/chat/completions');
    expect(first.auth).toBe('Bearer sk-test-secret');
    expect(first.body).toMatchObject({ model: 'qwen2.5-vl-3b', temperature: 0, max_tokens: 1024 });
    expect(first.body.messages).toHaveLength(1);
    expect(first.body.messages[0]!.content.map((c) => c.type)).toEqual(['text', 'image_url', 'image_url']);
    expect(first.body.messages[0]!.content[1]!.image_url!.url).toMatch(/^data:image\/jpeg;base64,\/9j\//);
    expect(server.seen.find((r) => idOf(r) === 'q8')!.body.messages[0]!.content).toHaveLength(5);
    expect(JSON.stringify(result)).not.toContain('sk-test-secret');
  } finally {
    await server.close();
  }
});

it('fails with a report when queries get no answer, and a retry asks only those', async () => {
  const broken = await startScriptedChatServer((req) => (['q6', 'q7'].includes(idOf(req)) ? { status: 503 } : { content: '<answer>no</answer>' }));
  const w = { endpoint: broken.url, retries: 1, concurrency: 4 };
  try {
    const err = await failure(predict('b', w));
    expect(err.message).toMatch(/2 of 12 queries got no answer \(q6: HTTP 503 .* \(after 2 attempts\); q7: .*\); the 10 answers are kept in .*predictions\.partial\.[0-9a-f]{12}\.jsonl: retry the stage/);
    expect(err.message).not.toContain('sk-test-secret');
  } finally {
    await broken.close();
  }
  const healthy = await startScriptedChatServer(() => ({ content: '<answer>yes</answer>' }));
  try {
    const out = (await predict('b', { ...w, endpoint: healthy.url })).outputs as unknown as { predictions: ArtifactRef; counts: Record<string, number> };
    expect(healthy.seen.map(idOf).sort()).toEqual(['q6', 'q7']);
    expect(out.counts).toMatchObject({ answered: 12, resumed: 10 });
    const rows = await jsonlRows<{ id: string; output: string }>(new ArtifactStore(env.home.artifactsDir), out.predictions);
    expect(rows.map((r) => [r.id, r.output])).toEqual(ids.map((id) => [id, ['q6', 'q7'].includes(id) ? '<answer>yes</answer>' : '<answer>no</answer>']));
    // Another model's answers are not this model's: a retry that changes the model asks everything again.
    const other = (await predict('b', { ...w, endpoint: healthy.url, model: 'another-model' })).outputs as unknown as { counts: Record<string, number> };
    expect(other.counts).toMatchObject({ answered: 12, resumed: 0 });
    expect(healthy.seen).toHaveLength(14);
  } finally {
    await healthy.close();
  }
});

it('cuts off an endpoint that hangs', async () => {
  const hanging = await startScriptedChatServer((req) => (idOf(req) === 'q0' ? { hang: true } : { content: '<answer>yes</answer>' }));
  try {
    const err = await failure(predict('c', { endpoint: hanging.url, timeoutSeconds: 1, retries: 0, apiKeyEnv: 'NO_SUCH_KEY_VAR' }));
    expect(err.message).toMatch(/1 of 12 queries got no answer \(q0: the request timed out \(after 1 attempt\)\)/);
  } finally {
    await hanging.close();
  }
});
