import os from 'node:os';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import sharp from 'sharp';
import { DEFAULT_MEMORY_MB, prepareInputs } from '../../engine/kinds/images.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter, readJsonl } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../data/manifest.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { countManifestImages, manifestFile } from '../data/manifest-input.js';
import type { StageActivityInput } from '../stage-io.js';
import { IMAGE_MEMORY_ENV, MiB, processImageMemory, type MemoryBudget } from './memory-budget.js';
import { prepareImage, type ImageContext, type ImageOutcome, type PrepareSpec } from './prepare-image.js';
import { limiter } from '../data/concurrency.js';
import { invalidWorkerSetting } from '../failures.js';
import { prepareKind } from '../../engine/kinds/images.js';
import type { Implementation } from '../kind-implementation.js';

export const QUARANTINE_MEDIA_TYPE = 'application/x-twinflow-quarantine+jsonl';

/** One line of the quarantine report: a rejected image, or an instance dropped for having none left. */
export interface QuarantineRow {
  instance_id: string;
  /** The rejected image's path; absent on instance rows. */
  path?: string;
  origin?: string;
  reason: string;
}

const HEARTBEAT_MS = 200;

/**
 * `images/prepare`: decodes every image of an instance manifest, orients, converts to sRGB,
 * caps the longest side and stores the result content-addressed. Bad files go to a
 * quarantine report with a reason; the stage fails only when the manifest itself is unusable.
 * Decodes reserve their memory from `budget`, by default the one this worker process shares.
 */
export function createPrepareImages(deps: { store: ArtifactStore; home: HomeLayout; budget?: MemoryBudget }): Implementation<typeof prepareKind> {
  const { store, home } = deps;
  return async function prepareImages(input: StageActivityInput) {
    const ctx = Context.current();
    const parsed = parseInputs(prepareInputs, input);
    const spec: PrepareSpec = { ...parsed, concurrency: parsed.concurrency ?? os.availableParallelism() };
    const budget = workerBudget(deps.budget, spec, input);
    const manifest = await manifestFile(store, parsed.instances, input);
    const total = await countManifestImages(manifest, input);
    const stageDir = home.stageDir(input.runId, input.stageId);
    const out = await JsonlWriter.open(path.join(stageDir, 'instances.jsonl'));
    const report = await JsonlWriter.open(path.join(stageDir, 'quarantine.jsonl'));
    const progress = { done: 0, total, unit: 'images' };
    const beat = () => ctx.heartbeat({ progress: { ...progress } });
    beat();
    const timer = setInterval(beat, HEARTBEAT_MS);
    let closed = false;
    try {
      const images: ImageContext = { store, spec, budget, threads: sharp.concurrency(), signal: ctx.cancellationSignal };
      const prepare = (image: ManifestImage) => prepareImage(images, image).finally(() => progress.done++);
      const counts = await processManifest(manifest, spec, ctx.cancellationSignal, prepare, { out, report });
      beat();
      await Promise.all([out.close(), report.close()]);
      closed = true;
      const instances = await store.putFile(out.file, MANIFEST_MEDIA_TYPE);
      const quarantine = await store.putFile(report.file, QUARANTINE_MEDIA_TYPE);
      instances.counts = { instances: counts.instances, images: counts.prepared };
      quarantine.counts = { rows: report.rows, images: counts.quarantined };
      const outputs = { instances, quarantine, counts };
      return { outputs, attempt: ctx.info.attempt };
    } finally {
      clearInterval(timer);
      if (!closed) await Promise.all([out.close(), report.close()]).catch(() => undefined);
    }
  };
}

/**
 * The budget this stage's decodes draw on. It must hold the stage's largest allowed image:
 * otherwise such an image would wait forever, and quarantining it instead would make the
 * output depend on which worker ran the stage.
 */
function workerBudget(given: MemoryBudget | undefined, spec: PrepareSpec, input: StageActivityInput): MemoryBudget {
  const where = `stage ${input.stageId} (${input.uses})`;
  let budget: MemoryBudget;
  try {
    budget = given ?? processImageMemory(DEFAULT_MEMORY_MB);
  } catch (err) {
    throw invalidWorkerSetting(`${where}: ${(err as Error).message}`);
  }
  if (spec.memoryMB * MiB <= budget.capacity) return budget;
  const workerMB = Math.floor(budget.capacity / MiB);
  throw invalidWorkerSetting(`${where}: with.memoryMB ${spec.memoryMB} is more than this worker's image memory (${workerMB} MB, ${IMAGE_MEMORY_ENV}); ` +
      `lower memoryMB, or start the worker with ${IMAGE_MEMORY_ENV}=${spec.memoryMB} or more`);
}

interface Counts {
  instances: number;
  images: number;
  prepared: number;
  quarantined: number;
  deduplicated: number;
  largestReservationMB: number;
}

interface Writers {
  out: JsonlWriter;
  report: JsonlWriter;
}

/**
 * Streams the manifest through a bounded window: rows start in order, their images run at
 * most `concurrency` at a time, and rows are written in input order, so the same input
 * always gives the same output bytes.
 */
async function processManifest(
  manifest: string,
  spec: PrepareSpec,
  signal: AbortSignal,
  prepare: (image: ManifestImage) => Promise<ImageOutcome>,
  writers: Writers,
) {
  const limit = limiter(spec.concurrency);
  const window: Array<Promise<{ row: ManifestRow; outcomes: ImageOutcome[] }>> = [];
  const counts: Counts = { instances: 0, images: 0, prepared: 0, quarantined: 0, deduplicated: 0, largestReservationMB: 0 };
  const seen = new Set<string>();
  const flush = async () => writeRow(await window.shift()!, writers, counts, seen);
  for await (const { value: row } of readJsonl<ManifestRow>(manifest)) {
    throwIfCancelled(signal);
    const images = Array.isArray(row?.images) ? row.images : [];
    const start = (image: ManifestImage) => limit(() => {
      throwIfCancelled(signal);
      return prepare(image);
    });
    const task = Promise.all(images.map(start));
    const pending = task.then((outcomes) => ({ row, outcomes }));
    pending.catch(() => undefined); // awaited in order below; this only keeps Node from calling it unhandled
    window.push(pending);
    if (window.length > spec.concurrency * 2) await flush();
  }
  while (window.length) await flush();
  throwIfCancelled(signal);
  return counts;
}

async function writeRow(
  { row, outcomes }: { row: ManifestRow; outcomes: ImageOutcome[] },
  { out, report }: Writers,
  counts: Counts,
  seen: Set<string>,
): Promise<void> {
  const kept: ManifestImage[] = [];
  for (const [i, outcome] of outcomes.entries()) {
    counts.images++;
    if (outcome.image) {
      counts.prepared++;
      counts.largestReservationMB = Math.max(counts.largestReservationMB, Math.ceil(outcome.reservedBytes / MiB));
      // 64 bits of the digest are plenty to tell a run's images apart and keep the set small.
      const key = outcome.image.sha256!.slice(0, 16);
      if (seen.has(key)) counts.deduplicated++;
      else seen.add(key);
      kept.push(outcome.image);
      continue;
    }
    counts.quarantined++;
    const { path: file, origin } = row.images[i]!;
    await report.write({ instance_id: row.instance_id, path: file, ...(origin ? { origin } : {}), reason: outcome.reason } satisfies QuarantineRow);
  }
  if (kept.length === 0) {
    await report.write({ instance_id: row.instance_id, reason: 'no usable images' } satisfies QuarantineRow);
    return;
  }
  counts.instances++;
  await out.write({ ...row, images: kept });
}

function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledFailure('stage cancelled');
}
