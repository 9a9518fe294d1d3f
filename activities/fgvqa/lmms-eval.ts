import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { lmmsEvalInputs } from '../../engine/kinds/fgvqa.js';
import { readJsonl, problemText } from '../data/jsonl.js';

/**
 * lmms-eval as fgvqa/predict runs it (EvolvingLMMs-Lab/lmms-eval; the TWIN fork reads
 * the same way). Our queries are our own JSONL, so each run gets a task folder:
 * - a task YAML on a local JSON dataset (`dataset_path: json` + `dataset_kwargs.data_files`,
 *   which `ConfigurableTask.download` hands to `datasets.load_dataset`), `test_split: test`,
 *   `output_type: generate_until`, greedy `generation_kwargs`;
 * - `utils.py` (lmms-eval-task/utils.py): images from the query's paths, the question as is;
 * - the queries as that dataset, one JSON line each, in the order doc ids count.
 * `--include_path` makes lmms-eval index the folder; `--log_samples` writes
 * `{output_path}/{model}/{date_id}_samples_{task}.jsonl`, one line per doc with `doc_id`,
 * `target` (here the query id) and the outputs in `resps` / `filtered_resps`.
 */

/** Our task's name; unlike lmms-eval's own tasks, so an included folder never shadows or is shadowed by one. */
export const LMMS_EVAL_TASK = 'twinflow_fgvqa_predict';

type LmmsEvalOptions = z.infer<typeof lmmsEvalInputs>;

const UTILS_PY = fileURLToPath(new URL('./lmms-eval-task/utils.py', import.meta.url));

/** Writes the task folder for `queries` and returns the YAML's path. Image paths are made absolute. */
export async function writeLmmsEvalTask(dir: string, queries: Array<{ id: string; question: string; images: string[] }>, maxTokens: number): Promise<string> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const data = path.join(dir, 'queries.jsonl');
  await fs.writeFile(data, queries.map((q) => `${JSON.stringify({ id: q.id, question: q.question, images: q.images.map((p) => path.resolve(p)) })}\n`).join(''));
  await fs.copyFile(UTILS_PY, path.join(dir, 'utils.py'));
  const yaml = path.join(dir, `${LMMS_EVAL_TASK}.yaml`);
  await fs.writeFile(yaml, taskYaml(data, queries.length, maxTokens));
  return yaml;
}

/** JSON strings are YAML double-quoted scalars, so paths need no other escaping. */
function taskYaml(data: string, n: number, maxTokens: number): string {
  return `# Written by twinflow fgvqa/predict: ${n} FGVQA queries, answered greedily.
task: ${LMMS_EVAL_TASK}
dataset_path: json
dataset_kwargs:
  data_files:
    test: ${JSON.stringify(data)}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.fgvqa_doc_to_visual
doc_to_text: !function utils.fgvqa_doc_to_text
# The query id, so each line of the samples file names its query.
doc_to_target: id
process_results: !function utils.fgvqa_process_results
generation_kwargs:
  max_new_tokens: ${maxTokens}
  temperature: 0
  do_sample: false
metric_list:
  - metric: answered
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
`;
}

/** What one lmms-eval run is asked to do. */
export interface LmmsEvalJob {
  tasks: string[];
  /** A folder of task YAMLs of our own (--include_path). */
  include?: string;
  output: string;
  genKwargs?: string;
  limit?: number;
}

/** The run's argv: `python -m lmms_eval ...`, through accelerate launch for more than one process, samples logged. */
export function lmmsEvalCommand(o: Pick<LmmsEvalOptions, 'python' | 'processes' | 'model' | 'modelArgs' | 'batchSize' | 'extraArgs'>, job: LmmsEvalJob): [string, ...string[]] {
  // A path is taken from the worker's folder like every other input; a bare name is looked up on PATH.
  const python = o.python.includes('/') ? path.resolve(o.python) : o.python;
  const launch = o.processes > 1 ? ['-m', 'accelerate.commands.launch', `--num_processes=${o.processes}`] : [];
  const modelArgs = Object.entries(o.modelArgs).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'True' : 'False') : v}`).join(',');
  return [
    python, ...launch, '-m', 'lmms_eval',
    '--model', o.model,
    ...(modelArgs ? ['--model_args', modelArgs] : []),
    '--tasks', job.tasks.join(','),
    ...(job.include ? ['--include_path', job.include] : []),
    '--batch_size', String(o.batchSize),
    ...(job.genKwargs ? ['--gen_kwargs', job.genKwargs] : []),
    '--output_path', job.output,
    '--log_samples',
    ...(job.limit !== undefined ? ['--limit', String(job.limit)] : []),
    ...o.extraArgs,
  ];
}

/** fgvqa/predict's run: our task folder, greedy decoding. */
export function lmmsEvalArgv(o: LmmsEvalOptions, paths: { include: string; output: string }, maxTokens: number): [string, ...string[]] {
  return lmmsEvalCommand(o, { tasks: [LMMS_EVAL_TASK], include: paths.include, output: paths.output, genKwargs: `max_new_tokens=${maxTokens},temperature=0` });
}

const PROGRESS = /Model Responding:\s*\d+%\|.*?\|\s*(\d+)\/(\d+)/;

/** lmms-eval's tqdm bar ("Model Responding:  45%|####5     | 450/1000 [...]") as done of total. */
export function parseLmmsEvalProgress(line: string): { done: number; total: number } | undefined {
  const m = PROGRESS.exec(line);
  return m && Number(m[2]) > 0 ? { done: Number(m[1]), total: Number(m[2]) } : undefined;
}

/** The samples file of our task under the output folder (its model subfolder name depends on model_args), newest first. */
export async function findSamplesFile(output: string): Promise<{ samples: string; results?: string } | undefined> {
  const suffix = `_samples_${LMMS_EVAL_TASK}.jsonl`;
  const files = await fs.readdir(output, { recursive: true }).catch(() => [] as string[]);
  const samples = files.filter((f) => f.endsWith(suffix)).sort().pop();
  if (!samples) return undefined;
  const results = path.join(path.dirname(samples), `${path.basename(samples).slice(0, -suffix.length)}_results.json`);
  return { samples: path.join(output, samples), results: files.includes(results) ? path.join(output, results) : undefined };
}

export interface LmmsEvalSample {
  docId: number;
  target?: string;
  output: string;
}

/**
 * The model outputs of a samples file. The raw text is `resps` when lmms-eval kept it
 * (it drops it when equal to `filtered_resps`, whose filters may strip reasoning tags);
 * both are nested one level per request ([[text]] / [text] in older releases, [text] /
 * text since). Lines without a doc id or a text come back in `problems`.
 */
export async function readLmmsEvalSamples(file: string): Promise<{ samples: LmmsEvalSample[]; problems: string[] }> {
  const samples: LmmsEvalSample[] = [];
  const problems: string[] = [];
  for await (const { value, line } of readJsonl<Record<string, unknown>>(file, (p) => problems.push(`line ${p.line}: ${problemText(p)}`))) {
    const output = firstText(value?.resps) ?? firstText(value?.filtered_resps);
    if (typeof value?.doc_id !== 'number' || output === undefined) problems.push(`line ${line}: no doc_id or no text in resps/filtered_resps`);
    else samples.push({ docId: value.doc_id, target: typeof value.target === 'string' ? value.target : undefined, output });
  }
  return { samples, problems };
}

function firstText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return Array.isArray(value) && value.length ? firstText(value[0]) : undefined;
}
