import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { sourceInputs } from '../../engine/kinds/twin.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { JsonlWriter, readJsonl, type JsonlProblem } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../data/manifest.js';
import type { StageActivityInput } from '../stage-io.js';
import { categorize, loadCategoryRules } from './categories.js';
import { ImagesRoot, isProblem, type ImageProblem } from './source-images.js';
import { SourceReport } from './source-report.js';
import { catalogLine, describeIssue, reviewLine, type CatalogLine } from './source-schema.js';
import { invalidInput } from '../failures.js';
import { sourceKind } from '../../engine/kinds/twin.js';
import type { Implementation } from '../kind-implementation.js';

/**
 * `twin/source`: reads a catalog in the Amazon Reviews 2023 layout and writes the
 * instance manifest, each image with the sha256 of its bytes (`source_sha256`), so an
 * image edited in place changes the manifest and every cache key after it. Bad lines (not
 * JSON, not an object, a field of the wrong kind, too long), bad listings (no ASIN, a
 * repeated ASIN, no usable image, no category) and bad image references (remote, missing,
 * unreadable, outside the images folder, also through a symbolic link) are counted and
 * sampled in the report with file:line; they never fail the stage.
 */
export function createReadCatalog(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof sourceKind> {
  return async function readCatalog(input: StageActivityInput) {
    const ctx = Context.current();
    const opts = parseInputs(sourceInputs, input);
    const catalog = path.resolve(opts.catalog);
    await mustExist(catalog, 'catalog');
    const images = await ImagesRoot.open(path.resolve(opts.imagesRoot ?? path.dirname(catalog)));
    const rules = await loadCategoryRules(opts.categories);
    const report = new SourceReport();
    const reviewImages = opts.reviews ? await readReviewImages(path.resolve(opts.reviews), report) : new Map<string, string[]>();

    const dir = deps.home.stageDir(input.runId, input.stageId);
    const out = await JsonlWriter.open(path.join(dir, 'instances.jsonl'));
    const beat = () => ctx.heartbeat({ progress: { done: report.counts.listings!, unit: 'listings' } });
    await writeInstances(catalog, { rules, images, seen: new Set(), reviewImages, report, opts }, out, beat);
    await out.close();
    report.count('instances', out.rows);
    const instances = await deps.store.putFile(out.file, MANIFEST_MEDIA_TYPE);
    instances.counts = { instances: out.rows, images: report.counts.images ?? 0 };
    const reportRef = await deps.store.putBytes(JSON.stringify(report.toJson(), null, 2), 'application/json');
    return {
      outputs: { instances, report: reportRef, counts: report.counts },
      attempt: ctx.info.attempt,
    };
  };
}

interface ListingContext {
  rules: Awaited<ReturnType<typeof loadCategoryRules>>;
  images: ImagesRoot;
  seen: Set<string>;
  reviewImages: Map<string, string[]>;
  report: SourceReport;
  opts: { unmatched: 'drop' | 'keep'; minImages: number };
}

/** What one catalog line came to: problems to report, and the instance when it is kept. */
interface Outcome {
  problems: ImageProblem[];
  row?: ManifestRow;
}

/** Listings read ahead of the one being written, so their images are hashed concurrently. */
const WINDOW = 64;

/**
 * Catalog lines in, manifest rows out, in catalog order. Each line's images are resolved
 * and hashed while later lines are read; what a line came to is reported only when it is
 * written, so the report lists problems in catalog order on every run.
 */
async function writeInstances(catalog: string, c: ListingContext, out: JsonlWriter, beat: () => void): Promise<void> {
  const window: Array<Promise<Outcome>> = [];
  const push = (outcome: Promise<Outcome>) => {
    outcome.catch(() => undefined); // awaited in order below; this only keeps Node from calling it unhandled
    window.push(outcome);
  };
  const flush = async () => {
    const { problems, row } = await window.shift()!;
    for (const [kind, message] of problems) c.report.problem(kind, message);
    if (!row) return;
    c.report.count('images', row.images.length);
    c.report.category(row.category);
    await out.write(row);
  };
  const malformed = (p: JsonlProblem) => push(Promise.resolve({ problems: [['malformedLines', `${p.file}:${p.line}: ${p.message}`]] }));
  for await (const { value, line } of readJsonl<unknown>(catalog, malformed)) {
    push(toInstance(value, `${catalog}:${line}`, c));
    if (c.report.counts.listings! % 200 === 0) beat();
    while (window.length > WINDOW) await flush();
  }
  while (window.length) await flush();
}

/** Checks run in catalog order before the first await, so "already seen" means seen earlier in the file. */
function toInstance(value: unknown, where: string, c: ListingContext): Promise<Outcome> {
  const done = (kind: string, message: string) => Promise.resolve({ problems: [[kind, `${where}: ${message}`] as ImageProblem] });
  const parsed = catalogLine.safeParse(value);
  if (!parsed.success) return done('malformedLines', describeIssue(parsed.error, value));
  c.report.count('listings');
  const listing = parsed.data;
  const asin = listing.parent_asin?.trim() ?? '';
  if (!asin) return done('noAsin', 'listing has no parent_asin');
  if (c.seen.has(asin)) return done('duplicateAsins', `parent_asin ${asin} already seen; kept the first`);
  c.seen.add(asin);
  const title = listing.title ?? '';
  const rule = categorize(c.rules, listing.main_category, title);
  if (!rule && c.opts.unmatched === 'drop') return done('unmatched', `${asin} (${listing.main_category ?? 'no main_category'}) matches no category rule`);
  const refs = [
    ...listingImageRefs(listing).map((ref) => ({ ref, role: 'listing' as const })),
    ...(c.reviewImages.get(asin) ?? []).map((ref) => ({ ref, role: 'review' as const })),
  ];
  const row = { instance_id: asin, asins: [asin], title, category: rule?.category ?? 'other', ...(rule?.supercategory ? { supercategory: rule.supercategory } : {}) };
  return withImages(row, refs, where, c);
}

/** The row with its usable images (each hashed), or the reasons it has too few. */
async function withImages(row: Omit<ManifestRow, 'images'>, refs: Array<{ ref: string; role: ManifestImage['role'] }>, where: string, c: ListingContext): Promise<Outcome> {
  const problems: ImageProblem[] = [];
  const found: ManifestImage[] = [];
  const at = `${where} (${row.instance_id})`;
  for (const image of await Promise.all(refs.map(({ ref, role }) => c.images.resolve(ref, role, at)))) {
    if (isProblem(image)) problems.push(image);
    else if (!found.some((i) => i.path === image.path)) found.push(image);
  }
  const images: ManifestImage[] = [];
  if (found.length >= c.opts.minImages) {
    for (const image of await Promise.all(found.map((i) => c.images.hash(i, at)))) {
      if (isProblem(image)) problems.push(image);
      else images.push(image);
    }
  }
  if (images.length < c.opts.minImages) {
    problems.push(['noImages', `${where}: ${row.instance_id} has ${images.length} usable image(s); needs ${c.opts.minImages}`]);
    return { problems };
  }
  return { problems, row: { ...row, images } };
}

function listingImageRefs(listing: CatalogLine): string[] {
  return (listing.images ?? []).flatMap((img) => {
    const ref = img.hi_res || img.large || img.thumb;
    return ref ? [ref] : [];
  });
}

/** Review photos by the listing they review. A malformed line is reported and left out. */
async function readReviewImages(file: string, report: SourceReport): Promise<Map<string, string[]>> {
  await mustExist(file, 'reviews');
  const byAsin = new Map<string, string[]>();
  const malformed = (where: string, message: string) => report.problem('malformedLines', `${where}: ${message}`);
  for await (const { value, line } of readJsonl<unknown>(file, (p) => malformed(`${p.file}:${p.line}`, p.message))) {
    const parsed = reviewLine.safeParse(value);
    if (!parsed.success) {
      malformed(`${file}:${line}`, describeIssue(parsed.error, value));
      continue;
    }
    const review = parsed.data;
    const asin = review.parent_asin || review.asin;
    if (!asin || !review.images) continue;
    const refs = review.images.flatMap((img) => {
      const ref = img.large_image_url || img.medium_image_url || img.small_image_url;
      return ref ? [ref] : [];
    });
    if (refs.length) byAsin.set(asin, [...(byAsin.get(asin) ?? []), ...refs]);
  }
  return byAsin;
}

async function mustExist(file: string, what: string): Promise<void> {
  try {
    await fs.access(file, fs.constants.R_OK);
  } catch {
    throw invalidInput(`the ${what} file ${file} does not exist or cannot be read`);
  }
}
