import { mapBounded } from '../data/concurrency.js';
import { nearestIdentities } from './neighbours.js';
import { makeQueries, type Identity, type QueryOptions, type RawQuery } from './queries.js';
import type { SourceContext } from './source-files.js';

/** Images checked (and copied into the store) at once. */
const CHECK_CONCURRENCY = 8;

/** Progress a heartbeat reports while images are checked or embedded. */
export interface Progress { done: number; total: number; unit: string }

/**
 * Queries whose every image passed the check and names its copy in the store. Checking
 * every listed file first would take hours on GLDv2's four million, so the draw comes
 * first: the images it uses are checked, bad ones leave their identity (with where and
 * why), and the draw is made again until it uses only good images. The same data and seed
 * give the same queries. Two listed files with the same bytes would show one image twice
 * in a query, so the second is left out as well.
 */
export async function drawChecked(identities: Identity[], opts: QueryOptions, ctx: SourceContext, progress: Progress): Promise<{ queries: RawQuery[]; identities: Identity[] }> {
  let current = identities;
  const stored = new Map<string, string>();
  const firstWith = new Map<string, string>();
  Object.assign(progress, { done: 0, total: 0, unit: 'images checked' });
  for (;;) {
    const queries = makeQueries(current, opts);
    const fresh = new Map<string, string>();
    for (const q of queries) q.images.forEach((image, i) => { if (!stored.has(image)) fresh.set(image, q.identities[i]!); });
    if (!fresh.size) return { queries: queries.map((q) => ({ ...q, images: q.images.map((image) => stored.get(image)!) })), identities: current };
    progress.total += fresh.size;
    const images = [...fresh.keys()];
    const checked = await mapBounded(images, CHECK_CONCURRENCY, async (image) => {
      const c = await ctx.checker.copy(image);
      progress.done++;
      return c;
    });
    const bad = new Set<string>();
    images.forEach((image, k) => {
      const { file, why } = checked[k]!;
      const same = file === undefined ? undefined : firstWith.get(file);
      if (why !== undefined || (same !== undefined && same !== image)) {
        bad.add(image);
        ctx.skip(`identity ${fresh.get(image)}`, why ?? `${image} has the same bytes as ${same}; left out so that no query shows one image twice`);
        return;
      }
      firstWith.set(file!, image);
      stored.set(image, file!);
    });
    current = without(current, bad);
  }
}

/**
 * Neighbours for harder "no" answers, embedded from checked images only: each identity's
 * first `perIdentity` good images by path. An image that fails the check, or that the
 * encoder cannot decode, leaves its identity (with where and why) instead of failing the build.
 */
export async function nearestChecked(
  identities: Identity[],
  opts: { model: string; k: number; perIdentity?: number; signal?: AbortSignal },
  ctx: SourceContext,
  progress: Progress,
): Promise<{ neighbours: Map<string, string[]>; identities: Identity[] }> {
  const per = opts.perIdentity ?? 2;
  Object.assign(progress, { done: 0, total: identities.length, unit: 'identities checked' });
  const chosen = await mapBounded(identities, CHECK_CONCURRENCY, async (identity) => {
    const good: Array<{ image: string; file: string }> = [];
    const bad: Array<{ image: string; why: string }> = [];
    for (const image of [...identity.images].sort()) {
      if (good.length >= per) break;
      const { file, why } = await ctx.checker.verify(image);
      if (why !== undefined) bad.push({ image, why });
      else good.push({ image, file });
    }
    progress.done++;
    return { good, bad };
  });
  // Reported after the concurrent checks, in identity order, so the problems read the same on every run.
  const bad = new Set<string>();
  const leaveOut = (id: string, image: string, why: string) => {
    bad.add(image);
    ctx.skip(`identity ${id}`, why);
  };
  identities.forEach((identity, i) => chosen[i]!.bad.forEach(({ image, why }) => leaveOut(identity.id, image, why)));
  const listedAs = new Map(chosen.flatMap((c) => c.good.map(({ image, file }) => [file, image] as const)));
  const neighbours = await nearestIdentities(identities.map((identity, i) => ({ id: identity.id, images: chosen[i]!.good.map((g) => g.file) })), {
    model: opts.model, k: opts.k, perIdentity: per, signal: opts.signal,
    onProgress: (done, total, unit) => Object.assign(progress, { done, total, unit }),
    onSkip: (id, file, why) => leaveOut(id, listedAs.get(file) ?? file, `${listedAs.get(file) ?? file}: the image encoder cannot read it (${why})`),
  });
  return { neighbours, identities: without(identities, bad) };
}

/** The identities without the `bad` images; one left with none is left out. */
export function without(identities: Identity[], bad: ReadonlySet<string>): Identity[] {
  if (!bad.size) return identities;
  return identities.flatMap((identity) => {
    if (!identity.images.some((image) => bad.has(image))) return [identity];
    const images = identity.images.filter((image) => !bad.has(image));
    return images.length ? [{ id: identity.id, images }] : [];
  });
}

