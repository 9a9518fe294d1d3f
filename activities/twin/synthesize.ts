import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import { SYNTH_ORIGIN, type SynthEdit, type SynthesizeSpec, synthesizeInputs } from '../../engine/kinds/synthesize.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../data/manifest.js';
import { manifestFile, readManifestRows } from '../data/manifest-input.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { REVIEW_ITEMS_MEDIA_TYPE } from '../review/items.js';
import type { StageActivityInput } from '../stage-io.js';
import { applyEdit, editCycle } from './synth/edit.js';
import { writeGenerated, type GeneratedWriters } from './generated-output.js';
import { keyedRandom } from './pairs.js';
import { type Raster, type Region, decodeRgb, encodeJpeg } from './synth/raster.js';
import { invalidInput } from '../failures.js';
import { synthesizeKind } from '../../engine/kinds/synthesize.js';
import type { Implementation } from '../kind-implementation.js';

/** What was done to make a generated image: enough to redo it and to show a reviewer where to look. */
export interface SynthEditRecord {
  type: SynthEdit;
  /** Every changed pixel lies inside this box. */
  region: Region;
  /**
   * Every value that decided the pixels. recolor: `at` (seed point of the part), `hue`
   * (degrees turned), `saturation` (factor), `tint` {hue, strength} (on grey parts);
   * patch: `mode` fill | copy (with `from`, the pasted box's corner) | mark (with `mark`
   * disc | bar | stripes, `color`, `opacity`), `feather`; shape: `mode` stretch (with
   * `axis`, `factor` at the centre) | mirror (left to right, with `feather`).
   */
  params: Record<string, unknown>;
  /** sha256 of the real image that was edited. */
  source: string;
}

/** A manifest image made by `twin/synthesize-variants`. */
export interface GeneratedImage extends ManifestImage {
  role: 'generated';
  sha256: string;
  width: number;
  height: number;
  origin: typeof SYNTH_ORIGIN;
  edit: SynthEditRecord;
}

export { SYNTH_QUESTION } from './generated-output.js';

const JPEG_QUALITY = 90;
const HEARTBEAT_MS = 200;
/** Below this mean change under the mask the variant is the source re-encoded, not a variant. */
const UNCHANGED = 0.5;

type RealImage = ManifestImage & { sha256: string };
interface Counts { instances: number; generated: number; skipped: number; dropped: number }

/**
 * `twin/synthesize-variants`: generated hard negatives on CPU. Each variant is one subtle,
 * seeded local edit (recolor, patch, shape) of one of the instance's real photos, stored as
 * a JPEG and offered for human validation as a `gen:<sha256>` review item.
 */
export function createSynthesizeVariants(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof synthesizeKind> {
  const { store, home } = deps;
  return async function synthesizeVariants(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(synthesizeInputs, input);
    const rows = await readManifestRows(await manifestFile(store, spec.instances, input), input);
    const { work, skipped } = chooseInstances(rows, spec.maxInstances, input);
    const dir = home.stageDir(input.runId, input.stageId);
    const writers = { generated: await JsonlWriter.open(path.join(dir, 'generated.jsonl')), items: await JsonlWriter.open(path.join(dir, 'items.jsonl')) };
    const progress = { done: 0, total: work.length * spec.perInstance, unit: 'images' };
    const beat = () => ctx.heartbeat({ progress: { ...progress } });
    beat();
    const timer = setInterval(beat, HEARTBEAT_MS);
    let closed = false;
    try {
      const counts: Counts = { instances: 0, generated: 0, skipped, dropped: 0 };
      const seen = new Set<string>();
      for (const { row, real } of work) {
        const made = await synthesizeInstance(store, spec, row, real, ctx.cancellationSignal, input, () => progress.done++);
        const fresh = firstOfEach(made, seen);
        counts.dropped += spec.perInstance - fresh.length;
        await writeInstance(writers, row, fresh, counts);
      }
      beat();
      await Promise.all([writers.generated.close(), writers.items.close()]);
      closed = true;
      const generated = await store.putFile(writers.generated.file, MANIFEST_MEDIA_TYPE);
      const items = await store.putFile(writers.items.file, REVIEW_ITEMS_MEDIA_TYPE);
      generated.counts = { instances: counts.instances, images: counts.generated };
      items.counts = { items: writers.items.rows };
      return { outputs: { generated, items, counts }, attempt: ctx.info.attempt };
    } finally {
      clearInterval(timer);
      if (!closed) await Promise.all([writers.generated.close(), writers.items.close()]).catch(() => undefined);
    }
  };
}

interface Made { image: GeneratedImage; source: RealImage }

/** The instance's variants in variant order; one whose edit changed nothing is left out. */
async function synthesizeInstance(
  store: ArtifactStore, spec: SynthesizeSpec, row: ManifestRow, real: RealImage[], signal: AbortSignal,
  input: StageActivityInput, onDone: () => void,
): Promise<Made[]> {
  const cycle = editCycle(spec.edits, spec.seed, row.instance_id);
  const decoded = new Map<string, Raster>();
  const made: Made[] = [];
  for (let variant = 0; variant < spec.perInstance; variant++) {
    if (signal.aborted) throw new CancelledFailure('stage cancelled');
    const random = keyedRandom(spec.seed, row.instance_id, variant);
    const source = real[Math.floor(random() * real.length)]!;
    const type = cycle[variant % cycle.length]!;
    let raster = decoded.get(source.sha256);
    if (!raster) decoded.set(source.sha256, (raster = await decode(store, source, row, input)));
    const applied = applyEdit(type, raster, random);
    onDone();
    if (applied.change < UNCHANGED) continue;
    const ref = await store.putBytes(await encodeJpeg(applied.image, JPEG_QUALITY));
    const { region, params } = applied.proposal;
    made.push({
      source,
      image: {
        role: 'generated', sha256: ref.sha256, width: raster.width, height: raster.height,
        origin: SYNTH_ORIGIN, edit: { type, region, params, source: source.sha256 },
      },
    });
  }
  return made;
}

/** Review item ids are `gen:<sha256>`, so an image whose bytes an earlier variant already made is left out. */
function firstOfEach(made: Made[], seen: Set<string>): Made[] {
  const fresh: Made[] = [];
  for (const m of made) {
    if (seen.has(m.image.sha256)) continue;
    seen.add(m.image.sha256);
    fresh.push(m);
  }
  return fresh;
}

async function writeInstance(writers: GeneratedWriters, row: ManifestRow, made: Made[], counts: Counts): Promise<void> {
  if (made.length === 0) return;
  counts.instances++;
  counts.generated += made.length;
  await writeGenerated(writers, row, made, (image) => ({ edit: image.edit }));
}

async function decode(store: ArtifactStore, image: RealImage, row: ManifestRow, input: StageActivityInput): Promise<Raster> {
  const file = await store.file(image.sha256);
  try {
    return await decodeRgb(file);
  } catch (err) {
    throw invalidInput(`stage ${input.stageId} (${input.uses}): image ${image.sha256} of instance ${row.instance_id} cannot be decoded ` +
        `(${err instanceof Error ? err.message : String(err)}); run images/prepare again (with cache: false)`);
  }
}

/** Every row of the manifest; a malformed one fails the stage, naming its lines. */
/**
 * The instances to edit, in manifest order, up to `maxInstances`, each with its distinct
 * real images sorted by digest (so the seeded pick ignores the order images are listed in).
 */
function chooseInstances(rows: ManifestRow[], maxInstances: number | undefined, input: StageActivityInput) {
  const work: Array<{ row: ManifestRow; real: RealImage[] }> = [];
  let skipped = 0;
  for (const row of rows) {
    if (maxInstances !== undefined && work.length >= maxInstances) break;
    const real = new Map<string, RealImage>();
    for (const image of row.images) {
      if (image?.role !== 'listing' && image?.role !== 'review') continue;
      if (!image.sha256) {
        throw invalidInput(`stage ${input.stageId} (${input.uses}): with.instances: instance ${row.instance_id} has an image without sha256 (${String(image.path ?? image.origin)}); pass a prepared manifest (the instances output of images/prepare or twin/merge)`);
      }
      if (!real.has(image.sha256)) real.set(image.sha256, image as RealImage);
    }
    if (real.size === 0) skipped++;
    else work.push({ row, real: [...real.values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0)) });
  }
  return { work, skipped };
}
