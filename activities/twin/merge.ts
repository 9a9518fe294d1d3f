import path from 'node:path';
import { Context } from '@temporalio/activity';
import { mergeInputs } from '../../engine/kinds/twin.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../data/manifest.js';
import { manifestFile, readManifestRows } from '../data/manifest-input.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import { readDecisions, readFullItems } from '../review/read-items.js';
import type { StageActivityInput } from '../stage-io.js';
import { UnionFind } from './union-find.js';
import { invalidInput } from '../failures.js';
import { mergeKind } from '../../engine/kinds/twin.js';
import type { Implementation } from '../kind-implementation.js';

interface MergeGroup {
  instance_id: string;
  asins: string[];
  titles: string[];
  categories: string[];
}

/**
 * `twin/merge`: listings a person (or an explicit policy) confirmed as the same product
 * become one instance. The merged instance keeps the first listing's id, title and
 * category (manifest order), every listing's ASINs, and each distinct image once.
 */
export function createMergeDuplicates(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof mergeKind> {
  return async function mergeDuplicates(input: StageActivityInput) {
    const ctx = Context.current();
    const opts = parseInputs(mergeInputs, input);
    const rows = await readManifestRows(await manifestFile(deps.store, opts.instances, input), input);
    const position = new Map(rows.map((r, i) => [r.instance_id, i]));
    const items = await readFullItems(deps.store, opts.candidates, input, 'with.candidates');
    const decisions = await readDecisions(deps.store, opts.decisions, input, 'with.decisions');

    const sets = new UnionFind(rows.length);
    const tally = { accepted: 0, rejected: 0, undecided: 0 };
    for (const item of items) {
      const decision = decisions.get(item.id);
      if (!decision) { tally.undecided++; continue; }
      if (decision.choice !== 'accept') { tally.rejected++; continue; }
      tally.accepted++;
      const [a, b] = pairOf(item.metadata, position, item.id, input);
      sets.union(a, b);
    }

    const members = new Map<number, number[]>();
    rows.forEach((_, i) => {
      const root = sets.find(i);
      const list = members.get(root);
      if (list) list.push(i);
      else members.set(root, [i]);
    });
    const dir = deps.home.stageDir(input.runId, input.stageId);
    const out = await JsonlWriter.open(path.join(dir, 'instances.jsonl'));
    const groups: MergeGroup[] = [];
    let duplicateImages = 0;
    // Roots are visited in manifest order of their first member, so output order is stable.
    const ordered = [...members.values()].sort((x, y) => x[0]! - y[0]!);
    for (const group of ordered) {
      const merged = mergeRows(group.map((i) => rows[i]!));
      duplicateImages += merged.dropped;
      await out.write(merged.row);
      if (group.length > 1) {
        groups.push({
          instance_id: merged.row.instance_id,
          asins: merged.row.asins,
          titles: group.map((i) => rows[i]!.title),
          categories: group.map((i) => rows[i]!.category),
        });
      }
    }
    await out.close();
    const instances = await deps.store.putFile(out.file, MANIFEST_MEDIA_TYPE);
    instances.counts = { instances: out.rows };
    const counts = { before: rows.length, after: out.rows, merged: groups.length, ...tally, duplicateImages };
    const mixed = groups.filter((g) => new Set(g.categories).size > 1).map((g) => g.instance_id);
    const report = await deps.store.putBytes(JSON.stringify({ counts, mixedCategories: mixed, groups }, null, 2), 'application/json');
    return { outputs: { instances, report, counts }, attempt: ctx.info.attempt };
  };
}

function pairOf(metadata: Record<string, unknown> | undefined, position: Map<string, number>, id: string, input: StageActivityInput): [number, number] {
  const a = position.get(String(metadata?.instance_1));
  const b = position.get(String(metadata?.instance_2));
  if (a !== undefined && b !== undefined) return [a, b];
  throw invalidInput(`stage ${input.stageId} (twin/merge): candidate ${id} names instances ${String(metadata?.instance_1)} and ` +
      `${String(metadata?.instance_2)}, which are not both in with.instances; pass the manifest twin/dedupe read`);
}

/** One instance from a group of listings; images whose bytes repeat are kept once. */
function mergeRows(group: ManifestRow[]): { row: ManifestRow; dropped: number } {
  const first = group[0]!;
  if (group.length === 1) return { row: first, dropped: 0 };
  const seen = new Set<string>();
  const images = [];
  let dropped = 0;
  for (const image of group.flatMap((r) => r.images)) {
    const key = image.sha256 ?? image.path ?? JSON.stringify(image);
    if (seen.has(key)) { dropped++; continue; }
    seen.add(key);
    images.push(image);
  }
  return { row: { ...first, asins: group.flatMap((r) => r.asins), images }, dropped };
}
