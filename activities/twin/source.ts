import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { sourceInputs } from '../../engine/kinds/twin.js';
import type { JsonObject } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { JsonlWriter, readJsonl, type JsonlProblem } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../data/manifest.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';
import { categorize, loadCategoryRules } from './categories.js';
import { SourceReport } from './source-report.js';

interface CatalogImage { hi_res?: string | null; large?: string | null; thumb?: string | null }
interface CatalogListing { parent_asin?: unknown; title?: unknown; main_category?: unknown; images?: unknown }
interface ReviewImage { large_image_url?: string | null; medium_image_url?: string | null; small_image_url?: string | null }
interface Review { parent_asin?: unknown; asin?: unknown; images?: unknown }

/**
 * `twin/source`: reads a catalog in the Amazon Reviews 2023 layout and writes the
 * instance manifest. Bad listings (no ASIN, a repeated ASIN, no usable image, no
 * category) and bad image references (remote, missing, unreadable, outside the images
 * folder) are counted and sampled in the report; they never fail the stage.
 */
export function createReadCatalog(deps: { store: ArtifactStore; home: HomeLayout }) {
  return async function readCatalog(input: StageActivityInput): Promise<StageActivityResult> {
    const ctx = Context.current();
    const opts = parseInputs(sourceInputs, input);
    const catalog = path.resolve(opts.catalog);
    await mustExist(catalog, 'catalog');
    const root = path.resolve(opts.imagesRoot ?? path.dirname(catalog));
    const rules = await loadCategoryRules(opts.categories);
    const report = new SourceReport();
    const onProblem = (p: JsonlProblem) => report.problem('malformedLines', `${p.file}:${p.line}: ${p.message}`);
    const reviewImages = opts.reviews ? await readReviewImages(path.resolve(opts.reviews), onProblem) : new Map<string, string[]>();

    const dir = deps.home.stageDir(input.runId, input.stageId);
    const out = await JsonlWriter.open(path.join(dir, 'instances.jsonl'));
    const seen = new Set<string>();
    for await (const { value: listing, line } of readJsonl<CatalogListing>(catalog, onProblem)) {
      report.count('listings');
      if (report.counts.listings! % 200 === 0) ctx.heartbeat({ progress: { done: report.counts.listings!, unit: 'listings' } });
      const row = await toInstance(listing, `${catalog}:${line}`, { rules, root, seen, reviewImages, report, opts });
      if (row) await out.write(row);
    }
    await out.close();
    report.count('instances', out.rows);
    const instances = await deps.store.putFile(out.file, MANIFEST_MEDIA_TYPE);
    instances.counts = { instances: out.rows, images: report.counts.images ?? 0 };
    const reportRef = await deps.store.putBytes(JSON.stringify(report.toJson(), null, 2), 'application/json');
    return {
      outputs: { instances, report: reportRef, counts: report.counts } as unknown as JsonObject,
      attempt: ctx.info.attempt,
    };
  };
}

interface ListingContext {
  rules: Awaited<ReturnType<typeof loadCategoryRules>>;
  root: string;
  seen: Set<string>;
  reviewImages: Map<string, string[]>;
  report: SourceReport;
  opts: { unmatched: 'drop' | 'keep'; minImages: number };
}

async function toInstance(listing: CatalogListing, where: string, c: ListingContext): Promise<ManifestRow | undefined> {
  const asin = typeof listing.parent_asin === 'string' ? listing.parent_asin.trim() : '';
  if (!asin) return void c.report.problem('noAsin', `${where}: listing has no parent_asin`);
  if (c.seen.has(asin)) return void c.report.problem('duplicateAsins', `${where}: parent_asin ${asin} already seen; kept the first`);
  c.seen.add(asin);
  const title = typeof listing.title === 'string' ? listing.title : '';
  const rule = categorize(c.rules, listing.main_category, title);
  if (!rule && c.opts.unmatched === 'drop') return void c.report.problem('unmatched', `${where}: ${asin} (${String(listing.main_category)}) matches no category rule`);
  const refs = [
    ...listingImageRefs(listing.images).map((ref) => ({ ref, role: 'listing' as const })),
    ...(c.reviewImages.get(asin) ?? []).map((ref) => ({ ref, role: 'review' as const })),
  ];
  const images: ManifestImage[] = [];
  for (const { ref, role } of refs) {
    const image = await resolveImage(ref, role, c.root, `${where} (${asin})`, c.report);
    if (image && !images.some((i) => i.path === image.path)) images.push(image);
  }
  if (images.length < c.opts.minImages) {
    return void c.report.problem('noImages', `${where}: ${asin} has ${images.length} usable image(s); needs ${c.opts.minImages}`);
  }
  c.report.count('images', images.length);
  c.report.category(rule?.category ?? 'other');
  return { instance_id: asin, asins: [asin], title, category: rule?.category ?? 'other', ...(rule?.supercategory ? { supercategory: rule.supercategory } : {}), images };
}

function listingImageRefs(images: unknown): string[] {
  if (!Array.isArray(images)) return [];
  return images.flatMap((img: CatalogImage) => {
    const ref = img?.hi_res || img?.large || img?.thumb;
    return typeof ref === 'string' && ref ? [ref] : [];
  });
}

/** A usable local image, or a counted reason why not. Paths may not leave the images folder. */
async function resolveImage(ref: string, role: ManifestImage['role'], root: string, where: string, report: SourceReport): Promise<ManifestImage | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    return void report.problem('remoteImages', `${where}: ${ref} is remote; download the images and point the catalog at the files`);
  }
  const file = path.resolve(root, ref);
  if (file !== root && !file.startsWith(root + path.sep)) {
    return void report.problem('outsideImages', `${where}: ${ref} is outside the images folder ${root}`);
  }
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return void report.problem('missingImages', `${where}: ${ref} is not a file`);
    await fs.access(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return void report.problem(code === 'ENOENT' ? 'missingImages' : 'unreadableImages', `${where}: ${ref}: ${code ?? (err as Error).message}`);
  }
  return { path: file, role, origin: ref };
}

async function readReviewImages(file: string, onProblem: (p: JsonlProblem) => void): Promise<Map<string, string[]>> {
  await mustExist(file, 'reviews');
  const byAsin = new Map<string, string[]>();
  for await (const { value } of readJsonl<Review>(file, onProblem)) {
    const asin = typeof value.parent_asin === 'string' ? value.parent_asin : typeof value.asin === 'string' ? value.asin : '';
    if (!asin || !Array.isArray(value.images)) continue;
    const refs = value.images.flatMap((img: ReviewImage) => {
      const ref = img?.large_image_url || img?.medium_image_url || img?.small_image_url;
      return typeof ref === 'string' && ref ? [ref] : [];
    });
    if (refs.length) byAsin.set(asin, [...(byAsin.get(asin) ?? []), ...refs]);
  }
  return byAsin;
}

async function mustExist(file: string, what: string): Promise<void> {
  try {
    await fs.access(file, fs.constants.R_OK);
  } catch {
    throw ApplicationFailure.create({ type: 'InvalidStageInput', nonRetryable: true, message: `the ${what} file ${file} does not exist or cannot be read` });
  }
}
