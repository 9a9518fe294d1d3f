/**
 * pipelines/train.yaml end to end on a real Temporal dev server, with a cpu and a gpu
 * worker, on a small real Twin dataset (twin/assemble's rows, verl and sharegpt exports).
 * GPU tools are FAKES here (test/fakes: fake-verl-python, fake-llamafactory-cli,
 * fake-lmms-eval-python check their command lines and write the real tools' layouts; no model
 * trains) and the teacher is a scripted OpenAI-compatible test server. What runs for real:
 * the pipeline, the dataset, the stage kinds' launch/resume/merge logic, the answer log,
 * FGVQA's query build and scoring, and Table 1's layout with deltas against the base.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { homeLayout } from '../../activities/home.js';
import { readTree } from '../../activities/store/tree.js';
import { startHarness, summary, type Harness } from './harness.js';
import { submitPipeline } from '../../cli/submit.js';
import { buildTwinFixture, runAssemble } from '../python/twin-fixture.js';
import { startScriptedChatServer } from '../support/scripted-chat-server.js';

const fakes = path.resolve(import.meta.dirname, '../fakes');
const cleanups: Array<() => Promise<unknown>> = [];
let h: Harness;
let dataset: string;
let scratch: string;

beforeAll(async () => {
  h = await startHarness({ queues: ['cpu', 'gpu'] });
  cleanups.push(() => h.stop());
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-train-'));
  cleanups.push(() => fs.rm(scratch, { recursive: true, force: true }));
  const home = homeLayout(path.join(scratch, 'build'));
  const fixture = await buildTwinFixture(home, { real: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], hard: [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11].map((a, i, all) => ({ a, b: all[(i + 1) % all.length]! })) });
  dataset = path.join(scratch, 'twin');
  await runAssemble(home, { ...fixture.with, evalInstances: 6, seed: 3, exports: ['rows', 'verl', 'sharegpt'], out: dataset });
}, 120_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('pipelines/train.yaml', () => {
  it('trains with GRPO and with teacher answers + SFT, and evaluates both against the base', async () => {
    // The teacher explains and answers yes to everything: right on positives, wrong on negatives.
    const teacher = await startScriptedChatServer(() => ({ content: 'The logos, seams and wear match. <answer>yes</answer>' }));
    cleanups.push(() => teacher.close());
    const yaml = await fs.readFile('pipelines/train.yaml', 'utf8');
    const runId = await submitPipeline(h.session, h.compile(yaml, {
      dataset, teacher_endpoint: teacher.url, teacher_model: 'teacher', gpus: '1', pairs: '8', multi: '8',
      verl_python: path.join(fakes, 'fake-verl-python'), llamafactory_cli: path.join(fakes, 'fake-llamafactory-cli'),
      lmms_eval_python: path.join(fakes, 'fake-lmms-eval-python'),
    }));
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    const out = (id: string) => done.stages[id]!.outputs as Record<string, unknown>;
    expect(out('grpo')).toMatchObject({ steps: 6 });
    const taught = out('teacher').counts as Record<'pairs' | 'kept' | 'wrong' | 'untagged', number>;
    expect(taught.kept).toBeGreaterThan(0);
    expect(taught.kept + taught.wrong + taught.untagged).toBe(taught.pairs);
    expect(taught.wrong).toBeGreaterThan(0);
    expect(teacher.seen.length).toBe(taught.pairs);
    expect(out('sft')).toMatchObject({ steps: expect.any(Number) });
    // Each trained model reached its evaluation as a folder artifact, pulled into the predict stage's folder.
    const store = new ArtifactStore(h.home.artifactsDir);
    expect((await readTree(store, out('grpo').model as { uri: string; sha256: string })).files.map((f) => f.path)).toContain('config.json');
    const log = await fs.readFile(h.home.logFile(runId, 'predict-grpo'), 'utf8');
    expect(log).toMatch(new RegExp(`--model_args pretrained=${h.home.stageDir(runId, 'predict-grpo').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/model-[0-9a-f]{16}`));
    const table = await fs.readFile(out('table').markdown as string, 'utf8');
    expect(table).toContain('Qwen2.5-VL-3B');
    expect(table).toContain('+ Twin (GRPO)');
    expect(table).toContain('+ Twin (SFT)');
  });
});
