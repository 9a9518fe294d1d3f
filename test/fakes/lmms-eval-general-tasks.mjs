/*
 * The FAKE lmms-eval's answer to a run of lmms-eval's own tasks (`--tasks realworldqa,pope`,
 * no --include_path), for the tests of lmms-eval/run. No model runs and no dataset is read:
 * each known task gets scores drawn from a hash of the task and --model_args (so another
 * model scores differently, the same one the same), under metric keys shaped as lmms-eval
 * writes them ("metric,filter", with "metric_stderr,filter" beside), in
 * {output_path}/{model}/{date_id}_results.json, and with --log_samples one samples file per
 * task ({date_id}_samples_{task}.jsonl, --limit lines or 5). The metric names are stand-ins
 * in lmms-eval's shape, not a list of each task's real metrics. An unknown task fails the way
 * lmms-eval reports it (the "Error during evaluation" line, exit 0); FAKE_LMMS_EVAL_EXIT=N
 * crashes with exit N.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const TASKS = {
  realworldqa: ['exact_match,flexible-extract'], pope: ['pope_accuracy,none', 'pope_f1_score,none'], cv_bench: ['accuracy,none'],
  ai2d: ['exact_match,flexible-extract'], seedbench: ['seed_image,none'], chartqa: ['relaxed_overall,none'], textvqa_val: ['exact_match,none'],
  blink: ['acc,none'], mmmu_val: ['mmmu_acc,none'], vlms_are_biased: ['accuracy,none'], mmlu: ['acc,none'], hellaswag: ['acc_norm,none'],
  gsm8k: ['exact_match,strict-match', 'exact_match,flexible-extract'],
};

export function runGeneralTasks(flags, fail) {
  for (const required of ['--model', '--tasks', '--output_path', '--batch_size']) if (!(required in flags)) fail(`this fake expects ${required} (lmms-eval/run always passes it)`);
  if (!/^[1-9]\d*$/.test(flags['--batch_size'])) fail(`--batch_size: ${flags['--batch_size']} is not a positive integer`);
  if ('--limit' in flags && !(Number(flags['--limit']) > 0)) fail(`--limit: ${flags['--limit']} is not a positive number`);
  const tasks = flags['--tasks'].split(',');
  const unknown = tasks.filter((t) => !(t in TASKS));
  console.log(`fake-lmms-eval argv: ${JSON.stringify(process.argv.slice(2))}`);
  if (unknown.length) {
    process.stderr.write(`2026-01-01 00:00:00 | ERROR    | lmms_eval.__main__:cli_evaluate:614 - Error during evaluation: Tasks not found: ${unknown.join(', ')}. Please set \`--verbosity=DEBUG\` to get more information.\n`);
    process.exit(0);
  }
  if (process.env.FAKE_LMMS_EVAL_EXIT) {
    process.stderr.write('Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n');
    process.exit(Number(process.env.FAKE_LMMS_EVAL_EXIT));
  }
  const modelArgs = flags['--model_args'] ?? '';
  const n = Math.floor(Number(flags['--limit'] ?? 5));
  for (const i of tasks.keys()) {
    process.stderr.write(`Model Responding: ${String(Math.floor((100 * (i + 1)) / tasks.length)).padStart(3)}%|#         | ${i + 1}/${tasks.length} [00:00<00:00, 10.00it/s]\r`);
  }
  process.stderr.write('\n');
  const score = (task, metric) => 0.3 + (createHash('sha256').update(`${task}\0${metric}\0${modelArgs}`).digest().readUInt16BE(0) / 65535) * 0.5;
  const results = {};
  for (const task of tasks) {
    results[task] = { alias: task };
    for (const key of TASKS[task]) {
      const [metric, filter] = key.split(',');
      results[task][key] = score(task, metric);
      results[task][`${metric}_stderr,${filter}`] = 0.01;
    }
  }
  const prefix = ['pretrained=', 'model='].find((p) => modelArgs.includes(p));
  const modelName = prefix ? modelArgs.split(prefix)[1].split(',')[0] : '';
  const dir = path.join(flags['--output_path'], modelName.split('/').slice(-2).join('/').replace(/["<>:/|\\?*[\]]+/g, '__'));
  fs.mkdirSync(dir, { recursive: true });
  const dateId = '20260101_000000';
  if ('--log_samples' in flags) {
    for (const task of tasks) {
      const lines = Array.from({ length: n }, (_, doc) => JSON.stringify({ doc_id: doc, target: 'x', filtered_resps: ['x'], input: `${task} doc ${doc}` }));
      fs.writeFileSync(path.join(dir, `${dateId}_samples_${task}.jsonl`), lines.map((l) => `${l}\n`).join(''));
    }
  }
  fs.writeFileSync(path.join(dir, `${dateId}_results.json`), JSON.stringify({
    results, versions: Object.fromEntries(tasks.map((t) => [t, 'Yaml'])),
    'n-samples': Object.fromEntries(tasks.map((t) => [t, { original: 1000, effective: n }])),
    config: { model: flags['--model'], model_args: modelArgs, batch_size: flags['--batch_size'], limit: flags['--limit'] ?? null },
    fake: 'written by test/fakes/fake-lmms-eval-python, not by lmms-eval',
  }, null, 2));
}
