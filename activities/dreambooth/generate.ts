import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { dreamboothKind, type DreamboothSpec } from '../../engine/kinds/dreambooth.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE } from '../data/manifest.js';
import { manifestFile, readManifestRows } from '../data/manifest-input.js';
import { cancelled, toolOutputInvalid } from '../failures.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { GroupExit } from '../process-group.js';
import { REVIEW_ITEMS_MEDIA_TYPE } from '../review/items.js';
import type { StageActivityInput, StageHeartbeat } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { folderOnThisHost } from '../store/folder-input.js';
import { putTree } from '../store/tree.js';
import { runTool } from '../tool-run.js';
import { follow, JsonlTail } from '../train/metrics-tail.js';
import { collectInstance, linkWeights, readDone, type Collected } from './collect.js';
import { dreamboothArgv, jobLine, planJobs, settingsDigest, type DreamboothJob } from './plan.js';
import { parseProgress, ProgressState } from './progress.js';

/**
 * `dreambooth/generate`: per instance, gpu/dreambooth.py fine-tunes the base model on the
 * instance's grounding images and draws look-alikes; `instancesPerProcess` instances per
 * python process, one process after another. An instance whose done.json an earlier attempt
 * left is never trained again: its images are stored as they are. Then the generated-images
 * manifest and review items, in twin/synthesize-variants' shape, and the weights as one folder.
 */
export function createDreamboothGenerate(deps: { store: ArtifactStore; home: HomeLayout; logs: StageLogs }): Implementation<typeof dreamboothKind> {
  const { store } = deps;
  return async function generateDreambooth(input: StageActivityInput) {
    const attempt = Context.current().info.attempt;
    const spec = parseInputs(dreamboothKind.with, input);
    const where = `stage ${input.stageId} (dreambooth/generate)`;
    const dir = deps.home.stageDir(input.runId, input.stageId);
    // A retry with other settings (new inputs) trains in a folder of its own: finished instances are only reused for the same ones.
    const output = path.join(dir, `output-${settingsDigest(spec)}`);
    await fs.mkdir(output, { recursive: true });
    const rows = await readManifestRows(await manifestFile(store, spec.instances, input), input);
    const { jobs, skipped } = planJobs(rows, spec, input);
    const pending: DreamboothJob[] = [];
    for (const job of jobs) if (!(await readDone(path.join(output, job.dir, 'done.json')))) pending.push(job);
    const resumed = jobs.length - pending.length;
    if (pending.length) {
      const model = typeof spec.model === 'string' ? await modelOnThisHost(spec.model) : await folderOnThisHost(store, spec.model, dir, 'model', where);
      await train(deps, input, spec, { dir, output, model, pending, total: jobs.length, resumed, where });
    }
    const outputs = await collect(store, spec, { dir, output, jobs, where });
    return { outputs: { ...outputs, counts: { ...outputs.counts, skipped, resumed } }, attempt, log: deps.logs.file(input.runId, input.stageId) };
  };
}

interface TrainJob { dir: string; output: string; model: string; pending: DreamboothJob[]; total: number; resumed: number; where: string }

/** Every pending instance, in batches of `instancesPerProcess`, each batch one gpu/dreambooth.py process. */
async function train(deps: { store: ArtifactStore; logs: StageLogs }, input: StageActivityInput, spec: DreamboothSpec, job: TrainJob): Promise<void> {
  const progressFile = path.join(job.dir, 'progress.jsonl');
  const tail = new JsonlTail(progressFile, parseProgress);
  await tail.read(); // lines of earlier attempts are history
  const state = new ProgressState(job.total, job.resumed);
  const stop = follow(tail, (event) => state.add(event));
  try {
    for (let start = 0; start < job.pending.length; start += spec.instancesPerProcess) {
      const batch = job.pending.slice(start, start + spec.instancesPerProcess);
      const jobsFile = path.join(job.dir, 'jobs', `batch-${String(start / spec.instancesPerProcess + 1).padStart(4, '0')}.jsonl`);
      await fs.mkdir(path.dirname(jobsFile), { recursive: true });
      const lines = await Promise.all(batch.map(async (j) => jobLine(j, await Promise.all(j.grounding.map((g) => deps.store.file(g.sha256))))));
      await fs.writeFile(jobsFile, `${lines.join('\n')}\n`);
      const argv = dreamboothArgv(spec, { model: job.model, jobs: jobsFile, output: job.output, progress: progressFile });
      const run = await runTool(deps.logs, input, {
        what: `${job.where}: ${spec.python} gpu/dreambooth.py`,
        argv,
        cwd: job.dir,
        env: { PYTHONUNBUFFERED: '1', ...spec.env },
        heartbeat: (): StageHeartbeat => state.heartbeat(),
        hint: (exit, tail) => dreamboothHint(exit, tail, spec.python),
      });
      if (run.cancelled) {
        await stop(); // the last lines it logged, for the message
        const at = state.describe() ?? 'the first instance';
        throw cancelled(`${job.where}: cancelled during ${at}; finished instances stay in ${job.output}, and a retry trains only the rest`);
      }
      for (const j of batch) {
        if (!(await readDone(path.join(job.output, j.dir, 'done.json')))) {
          throw toolOutputInvalid(`${job.where}: gpu/dreambooth.py exited 0 but instance ${j.row.instance_id} has no ${path.join(job.output, j.dir, 'done.json')}`, run.details);
        }
      }
    }
  } finally {
    await stop();
  }
}

/** A model given as a path is taken from the worker's folder; anything else is a model id for diffusers to resolve. */
async function modelOnThisHost(model: string): Promise<string> {
  const local = path.resolve(model);
  return (await fs.stat(local).then((s) => s.isDirectory(), () => false)) ? local : model;
}

interface CollectJob { dir: string; output: string; jobs: DreamboothJob[]; where: string }

async function collect(store: ArtifactStore, spec: DreamboothSpec, job: CollectJob) {
  const writers = { generated: await JsonlWriter.open(path.join(job.dir, 'generated.jsonl')), items: await JsonlWriter.open(path.join(job.dir, 'items.jsonl')) };
  const seen = new Set<string>();
  const model = typeof spec.model === 'string' ? spec.model : spec.model.uri;
  const counts = { instances: 0, generated: 0, dropped: 0 };
  const weights: NonNullable<Collected['weights']>[] = [];
  try {
    for (const j of job.jobs) {
      const folder = path.join(job.output, j.dir);
      const done = await readDone(path.join(folder, 'done.json'));
      if (!done) throw toolOutputInvalid(`${job.where}: instance ${j.row.instance_id} has no done.json in ${folder}`);
      const got = await collectInstance(store, folder, j, done, { model, seen, writers });
      if (got.images) counts.instances++;
      counts.generated += got.images;
      counts.dropped += got.dropped;
      if (got.weights) weights.push(got.weights);
    }
  } finally {
    await Promise.all([writers.generated.close(), writers.items.close()]);
  }
  const generated = { ...(await store.putFile(writers.generated.file, MANIFEST_MEDIA_TYPE)), counts: { instances: counts.instances, images: counts.generated } };
  const items = { ...(await store.putFile(writers.items.file, REVIEW_ITEMS_MEDIA_TYPE)), counts: { items: writers.items.rows } };
  let adapters;
  if (spec.keepWeights && weights.length) {
    await linkWeights(job.output, path.join(job.dir, 'adapters'), weights);
    adapters = await putTree(store, path.join(job.dir, 'adapters'));
  }
  return { generated, items, ...(adapters ? { adapters } : {}), counts };
}

/** What to do about the commonest ways gpu/dreambooth.py fails. */
export function dreamboothHint(exit: GroupExit, lines: string[], python: string): string | undefined {
  const text = lines.join('\n');
  if (exit.exitCode === 127) return `${python} was not found on this host: set with.python to the interpreter of the environment that has torch, diffusers, accelerate and peft`;
  const missing = /No module named '?(torch|diffusers|accelerate|peft|transformers)/.exec(text);
  if (missing) return `${missing[1]} is not installed for ${python}: install the README's DreamBooth set there, or set with.python`;
  if (/CUDA out of memory|OutOfMemoryError/.test(text)) return 'the GPU ran out of memory: lower resolution or batchSize, use finetune: lora, or precision fp16/bf16';
  if (/fp16 mixed precision requires a GPU|bf16 mixed precision requires/.test(text)) return 'this host has no GPU for mixed precision: set precision: no';
  if (/the loss is (nan|inf)/.test(text)) return 'training diverged: lower learningRate, or use precision: bf16';
  if (/OfflineModeIsEnabled|LocalEntryNotFoundError|does not appear to have a file named/.test(text)) return 'the base model is not on this host: put it in the Hugging Face cache there, or pass a folder (or folder artifact) as with.model';
  return undefined;
}
