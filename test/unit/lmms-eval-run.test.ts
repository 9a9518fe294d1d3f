/*
 * lmms-eval/run through test/fakes/fake-lmms-eval-python (a FAKE: it checks the command line
 * and writes lmms-eval's results and samples layout with made-up scores; no model runs):
 * - Table 4's tasks by default, each task's metrics read from the results file, its samples stored
 * - a trained model as a folder artifact is pulled and passed as pretrained=
 * - an unknown task (lmms-eval logs it and exits 0) and a crash fail the stage with the log tail
 * - with TWINFLOW_LMMS_EVAL_PYTHON set to an interpreter that has lmms-eval, the REAL lmms-eval
 *   runs its own realworldqa task (its YAML and utils) on a local parquet written by
 *   gpu/lmms_eval_check/local_task.py, with the weightless stand-in model (skipped otherwise)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { putTree } from '../../activities/store/tree.js';
import { readMetrics } from '../../activities/evaluate/lmms-eval-run.js';
import { checkPipelineText } from '../../engine/compile.js';
import { TABLE4_TASKS } from '../../engine/kinds/evaluate.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-lmms-eval-python');
const env = activitiesInTempHome('lmms-eval-run');
type Out = { metrics: Record<string, Record<string, number>>; results: ArtifactRef; samples: Record<string, ArtifactRef>; counts: { tasks: number; samples: number } };
const evaluate = (stageId: string, w: Record<string, unknown>) =>
  runStage(env.acts['lmms-eval/run'], 'lmms-eval/run', { python: FAKE, model: 'qwen2_5_vl', modelArgs: { pretrained: 'Qwen/Qwen2.5-VL-3B-Instruct' }, ...w }, stageId);
const argvOf = async (stageId: string) => {
  const line = (await fs.readFile(env.home.logFile('r1', stageId), 'utf8')).split('\n').find((l) => l.startsWith('fake-lmms-eval argv: '))!;
  return JSON.parse(line.slice('fake-lmms-eval argv: '.length)) as string[];
};

let model: ArtifactRef;
beforeAll(async () => {
  const dir = path.join(env.home.root, 'trained');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), '{"architectures": ["Qwen2_5_VLForConditionalGeneration"]}');
  model = await putTree(new ArtifactStore(env.home.artifactsDir), dir);
});

describe('lmms-eval/run', () => {
  it("runs Table 4's tasks by default and reads each task's metrics and samples", async () => {
    const out = (await evaluate('a', {})).outputs as unknown as Out;
    const argv = await argvOf('a');
    expect(argv.slice(argv.indexOf('--tasks'), argv.indexOf('--tasks') + 2)).toEqual(['--tasks', TABLE4_TASKS.join(',')]);
    expect(argv).toContain('--log_samples');
    expect(argv).not.toContain('--include_path');
    expect(argv).not.toContain('--gen_kwargs');
    expect(Object.keys(out.metrics).sort()).toEqual([...TABLE4_TASKS].sort());
    expect(Object.keys(out.metrics.pope!).sort()).toEqual(['pope_accuracy', 'pope_f1_score']);
    expect(Object.keys(out.metrics.realworldqa!)).toEqual(['exact_match,flexible-extract']);
    expect(out.metrics.pope!.pope_accuracy).toBeGreaterThan(0);
    expect(Object.keys(out.samples).sort()).toEqual([...TABLE4_TASKS].sort());
    expect(out.counts).toEqual({ tasks: 10, samples: 50 });
  });

  it('passes a trained model pulled from its folder artifact, --limit and --gen_kwargs; another model scores otherwise', async () => {
    const base = (await evaluate('b0', { tasks: ['mmlu', 'gsm8k'] })).outputs as unknown as Out;
    const out = (await evaluate('b', { tasks: ['mmlu', 'gsm8k'], pretrained: model, limit: 3, genKwargs: 'max_new_tokens=256' })).outputs as unknown as Out;
    const argv = await argvOf('b');
    expect(argv[argv.indexOf('--model_args') + 1]).toBe(`pretrained=${path.join(env.home.stageDir('r1', 'b'), `model-${model.sha256.slice(0, 16)}`)}`);
    expect(argv.slice(argv.indexOf('--limit'), argv.indexOf('--limit') + 2)).toEqual(['--limit', '3']);
    expect(argv[argv.indexOf('--gen_kwargs') + 1]).toBe('max_new_tokens=256');
    expect(out.counts).toEqual({ tasks: 2, samples: 6 });
    expect(Object.keys(out.metrics.gsm8k!).sort()).toEqual(['exact_match,flexible-extract', 'exact_match,strict-match']);
    expect(out.metrics.mmlu!.acc).not.toBe(base.metrics.mmlu!.acc);
  });

  it('fails when lmms-eval reports an error and exits 0, and when it crashes, with the log tail', async () => {
    const unknown = await failure(evaluate('c', { tasks: ['pope', 'nlvr2'] }));
    expect(unknown.type).toBe('StageFailed');
    expect(unknown.message).toMatch(/lmms-eval reported an error during evaluation \(it exits 0 when it does\): Tasks not found: nlvr2/);
    const crash = await failure(evaluate('d', { tasks: ['pope'], env: { FAKE_LMMS_EVAL_EXIT: '1' } }));
    expect(crash.message).toMatch(/fake-lmms-eval-python -m lmms_eval exited with code 1; last \d+ lines of output:\n[^]*CUDA out of memory/);
  });

  it('goes to queue gpu and reads groups and filters from a results file', () => {
    const { pipeline } = checkPipelineText('name: p\nstages:\n  eval:\n    uses: lmms-eval/run\n    with: { model: qwen2_5_vl }\n', 'p.yaml');
    expect(pipeline!.stages.eval!.queue).toBe('gpu');
    const metrics = readMetrics(JSON.stringify({
      results: { blink_art: { alias: ' - art', 'acc,none': 0.5, 'acc_stderr,none': 0.1, 'acc_stderr_clt,none': 0.1, 'acc_stderr_clustered,none': 'N/A' } },
      groups: { blink: { 'acc,none': 0.6, 'acc_stderr,none': 'N/A' } },
    }), 'here');
    expect(metrics).toEqual({ blink_art: { acc: 0.5 }, blink: { acc: 0.6 } });
  });
});

const REAL_PYTHON = process.env.TWINFLOW_LMMS_EVAL_PYTHON;
const CHECK = path.resolve(import.meta.dirname, '../../gpu/lmms_eval_check');

it.skipIf(!REAL_PYTHON)("runs the real lmms-eval on its own realworldqa task, offline, and reads lmms-eval's metrics", async () => {
  const local = path.join(env.home.root, 'realworldqa-local');
  const task = execFileSync(REAL_PYTHON!, [path.join(CHECK, 'local_task.py'), local, '--rows', '4'], { encoding: 'utf8' }).trim().split('\n').pop()!;
  expect(task).toBe('realworldqa_local');
  const result = await runStage(env.acts['lmms-eval/run'], 'lmms-eval/run', {
    python: REAL_PYTHON, model: 'twinflow_echo', modelArgs: { pretrained: 'twinflow/echo' }, tasks: [task],
    extraArgs: ['--include_path', path.join(local, 'tasks')],
    env: { LMMS_EVAL_PLUGINS: 'twinflow_check', PYTHONPATH: CHECK, HF_HUB_OFFLINE: '1', HF_HOME: path.join(env.home.root, 'hf') },
  }, 'real');
  const out = result.outputs as unknown as Out;
  expect(out.counts).toEqual({ tasks: 1, samples: 4 });
  // Only the metric itself: the stderr variants lmms-eval 0.7 writes beside it are left out.
  expect(Object.keys(out.metrics[task]!)).toEqual(['exact_match']);
  const samples = (await new ArtifactStore(env.home.artifactsDir).read(out.samples[task]!)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { exact_match: number; filtered_resps: string });
  // lmms-eval's own doc_to_visual decoded our picture, and the task YAML's generation settings reached the model.
  expect(samples[0]!.filtered_resps).toMatch(/^1 images \[96x64:RGB\] question='Which corner.*max_new_tokens=16 temperature=0/);
  expect(out.metrics[task]!.exact_match).toBeCloseTo(samples.reduce((a, s) => a + s.exact_match, 0) / samples.length, 10);
}, 300_000);

describe('the cache key of an lmms-eval stage', () => {
  it('holds the listing of a local model folder named in modelArgs, for lmms-eval/run and fgvqa/predict alike', async () => {
    const { getKind } = await import('../../engine/kinds/registry.js');
    expect(getKind('lmms-eval/run')!.readsPaths!({ modelArgs: { pretrained: '/models/twin-3b' } })).toEqual(['/models/twin-3b']);
    expect(getKind('lmms-eval/run')!.readsPaths!({ modelArgs: { pretrained: 'Qwen/Qwen2.5-VL-3B-Instruct' } })).toEqual([]);
    expect(getKind('fgvqa/predict')!.readsPaths!({ queries: 'q.jsonl', backend: 'lmms-eval', lmmsEval: { modelArgs: { pretrained: './out/model' } } })).toEqual(['q.jsonl', './out/model']);
  });
});
