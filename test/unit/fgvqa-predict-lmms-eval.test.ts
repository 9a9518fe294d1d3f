/*
 * fgvqa/predict with backend lmms-eval, run through test/fakes/fake-lmms-eval-python (a FAKE
 * that checks lmms-eval's command line and writes its output layout; no model runs here):
 * - the real command line on a task folder written for the queries (task YAML on a local JSON
 *   dataset, utils.py, absolute image paths), answers read back from the samples file by doc id
 * - accelerate launch for several processes, extra flags appended, progress in the heartbeats
 * - arguments the tool rejects, a crash, a missing interpreter: a clear error with the log tail
 * - a query missing from the samples fails the stage, a retry asks only that one, and a stage
 *   with every answer kept starts no run
 * - cancelling kills the run's process group
 * - the stage goes to queue gpu unless it names one; inputs are checked per backend at compile time
 * - the samples reader takes both layouts lmms-eval has written
 * - with TWINFLOW_LMMS_EVAL_PYTHON set to an interpreter that has lmms-eval, the REAL lmms-eval
 *   runs the task folder with gpu/lmms_eval_check's weightless stand-in model (skipped otherwise)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { StageActivityResult } from '../../activities/stage-io.js';
import { parseLmmsEvalProgress, readLmmsEvalSamples } from '../../activities/fgvqa/lmms-eval.js';
import { checkPipelineText } from '../../engine/compile.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { fourImages } from '../support/fgvqa-fixtures.js';
import { isAlive } from '../support/processes.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-lmms-eval-python');
const TASK = 'twinflow_fgvqa_predict';
const env = activitiesInTempHome('lmms-eval');
let queries: string;
const ids = ['p0', 'p1', 'p2', 'm0'];

beforeAll(async () => {
  const images = await fourImages(path.join(env.home.root, 'images'));
  queries = path.join(env.home.root, 'queries.jsonl');
  const rows = ids.map((id, i) => ({
    id, source: 'cub', type: id.startsWith('m') ? 'multi' : 'pair', answer: 'yes',
    question: `Same bird? [[say: ${id} says <answer>${i % 2 ? 'no' : 'yes'}</answer>]]`,
    images: id.startsWith('m') ? images : images.slice(i, i + 2),
  }));
  await fs.writeFile(queries, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

const lmms = (extra: Record<string, unknown> = {}) => ({
  python: FAKE, model: 'qwen2_5_vl', modelArgs: { pretrained: 'Qwen/Qwen2.5-VL-3B-Instruct', max_pixels: 1605632 }, ...extra,
});
const predict = (stageId: string, lmmsEval: Record<string, unknown>, w: Record<string, unknown> = {}) =>
  runStage(env.acts['fgvqa/predict'], 'fgvqa/predict', { queries, backend: 'lmms-eval', lmmsEval, ...w }, stageId);
type Out = { predictions: ArtifactRef; counts: Record<string, number>; lmmsEval?: { samples: string; results?: string; task: string } };
const rowsOf = (out: Out) => jsonlRows<{ id: string; output: string }>(new ArtifactStore(env.home.artifactsDir), out.predictions);
const logOf = (stageId: string) => fs.readFile(env.home.logFile('r1', stageId), 'utf8');
/** Every argv the fake was started with in this stage's log, in order. */
const argvs = async (stageId: string): Promise<string[][]> =>
  (await logOf(stageId)).split('\n').filter((l) => l.startsWith('fake-lmms-eval argv: ')).map((l) => JSON.parse(l.slice('fake-lmms-eval argv: '.length)));

describe('fgvqa/predict on lmms-eval', () => {
  it('runs lmms-eval on a task folder written for the queries and keeps each answer by doc id', async () => {
    const activityEnv = new MockActivityEnvironment({ attempt: 1 });
    const beats: unknown[] = [];
    activityEnv.on('heartbeat', (d: unknown) => beats.push(d));
    const w = { queries, backend: 'lmms-eval', lmmsEval: lmms() } as unknown as JsonObject;
    const result = await activityEnv.run(env.acts['fgvqa/predict'], { runId: 'r1', stageId: 'a', uses: 'fgvqa/predict', kindVersion: '1', with: w, shellEnv: {} }) as StageActivityResult;
    const out = result.outputs as unknown as Out;
    const dir = env.home.stageDir('r1', 'a');
    expect(await argvs('a')).toEqual([[
      '-m', 'lmms_eval', '--model', 'qwen2_5_vl', '--model_args', 'pretrained=Qwen/Qwen2.5-VL-3B-Instruct,max_pixels=1605632',
      '--tasks', TASK, '--include_path', path.join(dir, 'lmms-eval', 'task'), '--batch_size', '1',
      '--gen_kwargs', 'max_new_tokens=1024,temperature=0', '--output_path', path.join(dir, 'lmms-eval', 'output'), '--log_samples',
    ]]);
    expect((await rowsOf(out)).map((r) => [r.id, r.output])).toEqual([
      ['p0', 'p0 says <answer>yes</answer>'], ['p1', 'p1 says <answer>no</answer>'], ['p2', 'p2 says <answer>yes</answer>'], ['m0', 'm0 says <answer>no</answer>'],
    ]);
    expect(out.counts).toEqual({ queries: 4, answered: 4, resumed: 0, asked: 4 });
    expect(out.lmmsEval!.samples).toMatch(new RegExp(`/lmms-eval/output/Qwen__Qwen2\\.5-VL-3B-Instruct/\\d{8}_\\d{6}_samples_${TASK}\\.jsonl$`));
    expect(out.lmmsEval!.results).toBe(out.lmmsEval!.samples.replace(`_samples_${TASK}.jsonl`, '_results.json'));
    // The dataset lmms-eval loads: our ids and questions as they are, the images absolute.
    const docs = (await fs.readFile(path.join(out.lmmsEval!.task, 'queries.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(docs.map((d) => d.id)).toEqual(ids);
    expect(docs[1]).toEqual({ id: 'p1', question: 'Same bird? [[say: p1 says <answer>no</answer>]]', images: [path.join(env.home.root, 'images', '1.jpg'), path.join(env.home.root, 'images', '2.jpg')] });
    expect(beats).toContainEqual({ progress: { done: 4, total: 4, unit: 'queries' } });
  });

  it('launches several processes through accelerate and appends extra flags', async () => {
    const out = (await predict('b', lmms({ processes: 2, batchSize: 4, modelArgs: { pretrained: '/ckpt/run7/merged', interleave_visuals: true }, extraArgs: ['--verbosity', 'DEBUG'] }), { maxTokens: 64 })).outputs as unknown as Out;
    const [argv] = await argvs('b');
    expect(argv!.slice(0, 7)).toEqual(['-m', 'accelerate.commands.launch', '--num_processes=2', '-m', 'lmms_eval', '--model', 'qwen2_5_vl']);
    expect(argv).toContain('pretrained=/ckpt/run7/merged,interleave_visuals=True');
    expect(argv!.slice(argv!.indexOf('--batch_size'), argv!.indexOf('--batch_size') + 4)).toEqual(['--batch_size', '4', '--gen_kwargs', 'max_new_tokens=64,temperature=0']);
    expect(argv!.slice(-3)).toEqual(['--log_samples', '--verbosity', 'DEBUG']);
    expect(out.lmmsEval!.samples).toContain('/output/run7__merged/');
    expect(await fs.readFile(path.join(out.lmmsEval!.task, `${TASK}.yaml`), 'utf8')).toContain('max_new_tokens: 64');
  });

  it('fails with the tool\'s own complaint when it rejects an argument', async () => {
    const err = await failure(predict('c', lmms({ extraArgs: ['--no_such_flag'] })));
    expect(err.type).toBe('StageFailed');
    expect(err.message).toMatch(/^stage c \(fgvqa\/predict, lmms-eval\): .*fake-lmms-eval-python -m lmms_eval exited with code 2; last \d+ lines of output:\n/);
    expect(err.message).toContain('lmms_eval: error: unrecognized arguments: --no_such_flag');
  });

  it('fails retryably with the log tail when lmms-eval crashes, and names a missing interpreter', async () => {
    const err = await failure(predict('d', lmms({ env: { FAKE_LMMS_EVAL_EXIT: '1' } })));
    expect(err.type).toBe('StageFailed');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toContain('exited with code 1; last');
    expect(err.message).toContain('torch.OutOfMemoryError: CUDA out of memory');
    expect(err.details[0]).toMatchObject({ attempt: 1, exitCode: 1, log: env.home.logFile('r1', 'd') });
    // What lmms-eval catches during evaluation it logs, and then it exits 0.
    const caught = await failure(predict('d2', lmms({ env: { FAKE_LMMS_EVAL_ERROR: 'Tasks not found: twinflow_fgvqa_predict' } })));
    expect(caught.type).toBe('StageFailed');
    expect(caught.nonRetryable).toBe(false);
    expect(caught.message).toMatch(/lmms-eval reported an error during evaluation \(it exits 0 when it does\): Tasks not found: twinflow_fgvqa_predict; last \d+ lines/);
    const missing = await failure(predict('e', lmms({ python: '/nonexistent/venv/bin/python' })));
    expect(missing.message).toMatch(/exited with code 127; \/nonexistent\/venv\/bin\/python was not found on this host: set lmmsEval\.python/);
  });

  it('fails when a query is missing from the samples, asks only that one on retry, and starts no run once all are kept', async () => {
    const err = await failure(predict('f', lmms({ env: { FAKE_LMMS_EVAL_SKIP: 'p2' } })));
    expect(err.type).toBe('StageIncomplete');
    expect(err.message).toMatch(/1 of 4 queries got no answer \(p2: not in lmms-eval's samples file .*\); the 3 answers are kept in .*predictions\.partial\.[0-9a-f]{12}\.jsonl/);
    const retried = (await predict('f', lmms())).outputs as unknown as Out;
    expect(retried.counts).toEqual({ queries: 4, answered: 4, resumed: 3, asked: 1 });
    expect(await logOf('f')).toMatch(/fake-lmms-eval docs: 4,[^]*fake-lmms-eval docs: 1,/);
    expect((await rowsOf(retried)).map((r) => r.id)).toEqual(ids);
    const again = (await predict('f', lmms())).outputs as unknown as Out;
    expect(again.counts).toEqual({ queries: 4, answered: 4, resumed: 4, asked: 0 });
    expect(again).not.toHaveProperty('lmmsEval');
    expect(await argvs('f')).toHaveLength(2);
  });

  it('kills the run\'s process group when the stage is cancelled', async () => {
    const pidFile = path.join(env.home.root, 'fake.pid');
    const activityEnv = new MockActivityEnvironment({ attempt: 1 });
    const w = { queries, backend: 'lmms-eval', lmmsEval: lmms({ env: { FAKE_LMMS_EVAL_SLEEP_S: '60', FAKE_LMMS_EVAL_PID_FILE: pidFile } }) } as unknown as JsonObject;
    const running = activityEnv.run(env.acts['fgvqa/predict'], { runId: 'r1', stageId: 'g', uses: 'fgvqa/predict', kindVersion: '1', with: w, shellEnv: {} });
    let pid = 0;
    while (!pid) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    activityEnv.cancel();
    await expect(running).rejects.toThrow(/cancelled with 0 of 4 answers kept/);
    await expect.poll(() => isAlive(pid), { timeout: 5_000 }).toBe(false);
  });
});

describe('fgvqa/predict in a pipeline', () => {
  const pipeline = (stage: string, extra = '') => checkPipelineText(`name: p\n${extra}stages:\n  predict:\n    uses: fgvqa/predict\n${stage}`, 'p.yaml');
  const problems = (stage: string) => pipeline(stage).diagnostics.map(formatDiagnostic);

  it('goes to queue gpu with backend lmms-eval, unless the stage names its queue', () => {
    const lmmsStage = '    with:\n      queries: q.jsonl\n      backend: lmms-eval\n      lmmsEval: { model: qwen2_5_vl, modelArgs: { pretrained: Qwen/Qwen2.5-VL-3B-Instruct } }\n';
    expect(pipeline(lmmsStage).pipeline!.stages.predict!.queue).toBe('gpu');
    expect(pipeline(lmmsStage, 'defaults:\n  queue: lab\n').pipeline!.stages.predict!.queue).toBe('gpu');
    expect(pipeline(`${lmmsStage}    queue: gpu-h100\n`).pipeline!.stages.predict!.queue).toBe('gpu-h100');
    const openai = '    with: { queries: q.jsonl, endpoint: "http://127.0.0.1:8000/v1", model: m }\n';
    expect(pipeline(openai).pipeline!.stages.predict!.queue).toBe('cpu');
    expect(pipeline(openai, 'defaults:\n  queue: lab\n').pipeline!.stages.predict!.queue).toBe('lab');
    expect(pipeline('    with: { queries: q.jsonl, backend: embedding-baseline, baseline: { threshold: 0.8 } }\n').pipeline!.stages.predict!.queue).toBe('cpu');
  });

  it('checks each backend\'s own inputs and refuses another backend\'s', () => {
    expect(problems('    with: { queries: q.jsonl }\n')).toEqual([
      expect.stringMatching(/^p\.yaml:\d+:\d+: .*backend openai needs endpoint/),
      expect.stringMatching(/backend openai needs model/),
    ]);
    expect(problems('    with: { queries: q.jsonl, backend: lmms-eval }\n')).toEqual([expect.stringMatching(/backend lmms-eval needs lmmsEval: \{ model: qwen2_5_vl/)]);
    expect(problems('    with: { queries: q.jsonl, backend: lmms-eval, endpoint: "http://h/v1", lmmsEval: { model: qwen2_5_vl } }\n'))
      .toEqual([expect.stringMatching(/endpoint is read only by backend openai; this stage uses backend lmms-eval/)]);
    expect(problems('    with: { queries: q.jsonl, backend: lmms-eval, lmmsEval: { model: qwen2_5_vl, modelArgs: { pretrained: "a,b" } } }\n'))
      .toEqual([expect.stringMatching(/cannot hold a comma/)]);
  });
});

it('reads lmms-eval\'s progress bar', () => {
  expect(parseLmmsEvalProgress('Model Responding:  45%|####5     | 450/1000 [00:10<00:12, 43.21it/s]')).toEqual({ done: 450, total: 1000 });
  expect(parseLmmsEvalProgress('Model Responding:   0%|          | 0/250 [00:00<?, ?it/s]')).toEqual({ done: 0, total: 250 });
  expect(parseLmmsEvalProgress('Postprocessing: 100%|##########| 4/4')).toBeUndefined();
});

it('reads the outputs from both samples layouts lmms-eval has written', async () => {
  const file = path.join(env.home.root, 'samples.jsonl');
  await fs.writeFile(file, [
    { doc_id: 0, target: 'a', resps: [['raw <think>x</think> <answer>yes</answer>']], filtered_resps: [' <answer>yes</answer>'], doc_hash: 'h' },
    { doc_id: 1, target: 'b', filtered_resps: '<answer>2</answer>', input: 'q' },
    { doc_id: 2, target: 'c', resps: ['<answer>no</answer> raw'], filtered_resps: '<answer>no</answer>' },
    { target: 'd', filtered_resps: 'no doc id' },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const { samples, problems } = await readLmmsEvalSamples(file);
  expect(samples).toEqual([
    { docId: 0, target: 'a', output: 'raw <think>x</think> <answer>yes</answer>' },
    { docId: 1, target: 'b', output: '<answer>2</answer>' },
    { docId: 2, target: 'c', output: '<answer>no</answer> raw' },
  ]);
  expect(problems).toEqual(['line 4: no doc_id or no text in resps/filtered_resps']);
});

const REAL_PYTHON = process.env.TWINFLOW_LMMS_EVAL_PYTHON;

it.skipIf(!REAL_PYTHON)('runs the real lmms-eval on the task folder with a weightless stand-in model', async () => {
  const result = await predict('real', {
    python: REAL_PYTHON, model: 'twinflow_echo', modelArgs: { pretrained: 'twinflow/echo' },
    env: { LMMS_EVAL_PLUGINS: 'twinflow_check', PYTHONPATH: path.resolve(import.meta.dirname, '../../gpu/lmms_eval_check'), HF_HUB_OFFLINE: '1', HF_HOME: path.join(env.home.root, 'hf') },
  });
  const out = result.outputs as unknown as Out;
  expect(out.counts).toMatchObject({ queries: 4, answered: 4, asked: 4 });
  expect(out.lmmsEval!.samples).toMatch(/\/twinflow__echo\/\d{8}_\d{6}_samples_twinflow_fgvqa_predict\.jsonl$/);
  const rows = await rowsOf(out);
  // lmms-eval loaded every image through our utils.py, asked the question as is, greedily, with 1,024 new tokens.
  expect(rows.map((r) => r.id)).toEqual(ids);
  expect(rows[0]!.output).toMatch(/^2 images \[32x24:RGB,32x24:RGB\] question='Same bird\? \[\[say: p0 says <answer>yes<\/a' max_new_tokens=1024 temperature=0 <answer>yes<\/answer>$/);
  expect(rows[3]!.output).toMatch(/^4 images \[(32x24:RGB,?){4}\]/);
}, 300_000);
