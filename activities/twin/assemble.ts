import fs from 'node:fs/promises';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import {
  PARQUET_MEDIA_TYPE, SHAREGPT_MEDIA_TYPE, TWIN_META_MEDIA_TYPE, TWIN_ROWS_MEDIA_TYPE, assembleInputs, type AssembleSpec,
} from '../../engine/kinds/assemble.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { writeDatasetCard } from '../export/dataset-card.js';
import { writeQueriesPerInstanceSvg } from '../export/figure.js';
import { placeImages } from '../export/images.js';
import { putTree } from '../store/tree.js';
import { writeDatasetInfo } from '../export/sharegpt.js';
import { RowTally, imagesPerInstance, instancePoints, usedImages, withTotal, type CountsWithTotal } from '../export/stats.js';
import { fileSafe, type HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { failer, loadAssemblyInputs, type Loaded } from './assemble/load.js';
import { checkCounts, orderQueries, planSplits, quotasFor, selectQueries, type SplitName, type SplitPlan } from './assemble/plan.js';
import { buildVocabulary } from './assemble/rows.js';
import { checkTemplates, DEFAULT_PAIR_TEMPLATES } from './prompts.js';
import { assembleKind } from '../../engine/kinds/assemble.js';
import type { Implementation } from '../kind-implementation.js';

const HEARTBEAT_MS = 200;
const SPLITS: SplitName[] = ['train', 'eval'];
/** Marks a folder as written by this stage, so a rerun may replace it and nothing else. */
const MARKER = '.twinflow-dataset';

/** Where the dataset goes when `with.out` is not set: beside the run's other state under TWINFLOW_HOME. */
export function defaultDatasetDir(home: HomeLayout, runId: string, stageId: string): string {
  return path.join(home.root, 'datasets', fileSafe(runId), fileSafe(stageId));
}

/**
 * `twin/assemble`: the Twin pair queries, split by instance into Twin and Twin-Eval,
 * subsampled and ordered by seed, written as a self-contained dataset folder. Rows stream
 * from an ordered id array (see assemble/plan.ts), so memory does not grow with the set.
 * The folder is built beside its final place and moved there at the end: a retried or
 * cancelled attempt never leaves a half-written dataset under the final name.
 */
export function createAssembleTwin(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof assembleKind> {
  const { store, home } = deps;
  return async function assembleTwin(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(assembleInputs, input);
    const templates = spec.templates ?? DEFAULT_PAIR_TEMPLATES;
    const problems = checkTemplates(templates);
    if (problems.length) failer(input)(`with.templates: ${problems.join('; ')}; fix the templates or leave with.templates out for the built-in ones`);
    const loaded = await loadAssemblyInputs(store, spec, input);
    const { plans, orders } = planRows(spec, loaded, input);
    const out = path.resolve(spec.out ?? defaultDatasetDir(home, input.runId, input.stageId));
    await checkOut(out, input);
    const partial = `${out}.partial`;
    await fs.rm(partial, { recursive: true, force: true });
    await fs.mkdir(partial, { recursive: true });
    const progress = { done: 0, total: orders.train.length + orders.eval.length, unit: 'rows' };
    const beat = () => ctx.heartbeat({ progress: { ...progress } });
    beat();
    const timer = setInterval(beat, HEARTBEAT_MS);
    try {
      const result = await writeDataset({ loaded, plans, orders, spec, templates, dir: partial, store }, progress, ctx.cancellationSignal);
      beat();
      await moveIntoPlace(partial, out, input);
      const files: Record<string, ArtifactRef> = {};
      // In parallel: hashing runs here while the copies run on the thread pool.
      const refs = await Promise.all(result.files.map((name) => store.putFile(path.join(out, name), mediaTypeOf(name))));
      result.files.forEach((name, i) => (files[name] = refs[i]!));
      // The folder as one artifact, for hosts that cannot see `out` (`twinflow pull`, a GPU host).
      const datasetTree = await putTree(store, out, new Map([...Object.entries(files), ...result.images]));
      const outputs = { dataset: out, datasetTree, files, counts: result.counts };
      return { outputs: outputs, attempt: ctx.info.attempt };
    } catch (err) {
      await fs.rm(partial, { recursive: true, force: true });
      throw err;
    } finally {
      clearInterval(timer);
    }
  };
}

/** The splits, and each split's rows as an ordered array of query ids. */
function planRows(spec: AssembleSpec, loaded: Loaded, input: StageActivityInput) {
  const plans = planSplits(loaded, evalCount(spec, loaded, input), spec.seed);
  const orders = {} as Record<SplitName, Uint32Array>;
  for (const split of SPLITS) {
    checkCounts(plans[split].space);
    const target = split === 'train' ? spec.target : spec.evalTarget;
    const quotas = quotasFor(plans[split].space.counts, target, spec.balance);
    orders[split] = orderQueries(selectQueries(plans[split].space, quotas, spec.seed, split), spec.balance, spec.shardRows, spec.seed, split);
  }
  return { plans, orders };
}

function evalCount(spec: AssembleSpec, loaded: Loaded, input: StageActivityInput): number {
  const n = loaded.instances.length;
  if (spec.evalInstances === undefined) return Math.round(spec.evalFraction * n);
  if (spec.evalInstances > n) failer(input)(`with.evalInstances is ${spec.evalInstances} but with.instances has only ${n} instances; lower it or use evalFraction`);
  return spec.evalInstances;
}

/** Everything one attempt works from, once inputs are read and the splits planned. */
interface Job {
  loaded: Loaded;
  plans: Record<SplitName, SplitPlan>;
  orders: Record<SplitName, Uint32Array>;
  spec: AssembleSpec;
  templates: readonly string[];
  dir: string;
  store: ArtifactStore;
}

async function writeDataset(job: Job, progress: { done: number; total: number; unit: string }, signal: AbortSignal) {
  const { loaded, plans, orders, spec, dir } = job;
  // apache-arrow and parquet-wasm load here, not when a worker starts (about half a second).
  const { markUsed, writeSplit } = await import('./assemble/write.js');
  const used = {
    train: markUsed(plans.train.space, orders.train, new Uint8Array(loaded.images.length)),
    eval: markUsed(plans.eval.space, orders.eval, new Uint8Array(loaded.images.length)),
  };
  const embed = spec.images === 'embed';
  const folder = !embed || spec.exports.includes('rows') || spec.exports.includes('sharegpt');
  const { extensions, files: imageFiles } = await placeImages(loaded.images, used.train.map((v, i) => v | used.eval[i]!), {
    dir: folder ? path.join(dir, 'images') : undefined, signal, fileOf: (sha256) => job.store.file(sha256),
  });
  if (signal.aborted) throw new CancelledFailure('twin/assemble cancelled');
  const vocab = buildVocabulary(loaded, extensions, job.templates);
  const tally = new RowTally(vocab);
  const context = {
    dir, vocab, tally, signal, exports: spec.exports, instanceIds: loaded.instances.map((x) => x.id),
    embedFiles: embed ? imageFiles : undefined, batchRows: embed ? 256 : 2_048,
    onRows: (n: number) => { progress.done += n; },
  };
  const files: string[] = [];
  // The copied images are named by their digest: the tree of the folder need not hash them again.
  const images = new Map<string, { sha256: string; bytes: number }>();
  if (folder) {
    await Promise.all(loaded.images.map(async (image, i) => {
      if (!extensions[i]) return;
      images.set(`images/${image.sha256}.${extensions[i]}`, { sha256: image.sha256, bytes: (await fs.stat(imageFiles[i]!)).size });
    }));
  }
  for (const split of SPLITS) files.push(...await writeSplit(plans[split], orders[split], context));
  const counts = { train: withTotal(tally.kinds.train), eval: withTotal(tally.kinds.eval) };
  if (spec.exports.includes('sharegpt')) {
    files.push(path.basename(await writeDatasetInfo(path.join(dir, 'dataset_info.json'), { twin: 'train.sharegpt.json', twin_eval: 'eval.sharegpt.json' })));
  }
  await fs.writeFile(path.join(dir, 'stats.json'), `${JSON.stringify(statsOf(job, counts, tally, used), null, 2)}\n`);
  await writeQueriesPerInstanceSvg(path.join(dir, 'queries-per-instance.svg'), instancePoints(plans));
  await writeDatasetCard(path.join(dir, 'README.md'), spec.exports, counts, embed);
  await fs.writeFile(path.join(dir, MARKER), 'written by twinflow twin/assemble; a rerun replaces this folder\n');
  files.push('stats.json', 'queries-per-instance.svg', 'README.md');
  return { files, counts, images };
}

/** stats.json: what was written and what it was drawn from, with every decision and drop counted. */
function statsOf(job: Job, counts: Record<SplitName, CountsWithTotal>, tally: RowTally, used: Record<SplitName, Uint8Array>) {
  const { loaded, plans } = job;
  return {
    settings: settingsOf(job.spec, job.templates, plans), counts,
    available: { train: withTotal(plans.train.space.counts), eval: withTotal(plans.eval.space.counts) },
    byCategory: { train: tally.categories('train'), eval: tally.categories('eval') },
    images: { ...usedImages(loaded, used), duplicatesDropped: loaded.duplicateImages, generatedInInstancesIgnored: loaded.ignoredGenerated },
    imagesPerInstance: imagesPerInstance(loaded),
    hardNegatives: { ...loaded.hard, crossSplitDropped: plans.train.crossSplit },
    generated: loaded.generated,
  };
}

function settingsOf(spec: AssembleSpec, templates: readonly string[], plans: Record<SplitName, SplitPlan>) {
  return {
    seed: spec.seed, instances: { train: plans.train.space.instances.length, eval: plans.eval.space.instances.length },
    target: spec.target ?? null, evalTarget: spec.evalTarget ?? null, balance: spec.balance, shardRows: spec.shardRows,
    images: spec.images, exports: spec.exports, templates: templates.length,
  };
}

/** Refuses to replace a folder this stage did not write; returns whether `out` exists. */
async function checkOut(out: string, input: StageActivityInput): Promise<boolean> {
  const entries = await fs.readdir(out).catch(() => undefined);
  if (entries && entries.length > 0 && !entries.includes(MARKER)) {
    failer(input)(`with.out ${out} already holds files that twin/assemble did not write; choose an empty or new folder, or remove it`);
  }
  return entries !== undefined;
}

/** Replaces an earlier dataset of this stage at `out` with the finished one. */
async function moveIntoPlace(partial: string, out: string, input: StageActivityInput): Promise<void> {
  if (await checkOut(out, input)) await fs.rm(out, { recursive: true, force: true });
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.rename(partial, out);
}

function mediaTypeOf(name: string): string {
  if (name.endsWith('.meta.jsonl')) return TWIN_META_MEDIA_TYPE;
  if (name.endsWith('.jsonl')) return TWIN_ROWS_MEDIA_TYPE;
  if (name.endsWith('.parquet')) return PARQUET_MEDIA_TYPE;
  if (name.endsWith('.sharegpt.json')) return SHAREGPT_MEDIA_TYPE;
  if (name.endsWith('.svg')) return 'image/svg+xml';
  if (name.endsWith('.md')) return 'text/markdown';
  return 'application/json';
}
