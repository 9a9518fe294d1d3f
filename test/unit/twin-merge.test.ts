/*
 * Scenarios (core/decide and twin/merge, on manifests and items written by the test):
 * - Policies: accept all, none, the top N per group by score (ties by id), a minimum score;
 *   the policy's words are returned and kept in every decision, marked automatic.
 * - Repeated item ids and malformed items fail without retries, saying where.
 * - Merge: accepted pairs join transitively (union-find), rejected and undecided pairs do
 *   not; the merged instance keeps the first listing's id, every ASIN and each image once.
 * - A candidate naming an instance the manifest lacks fails with what to pass instead.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/index.js';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { ManifestRow } from '../../activities/data/manifest.js';
import type { Decision, ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

let home: HomeLayout;
let acts: ReturnType<typeof createActivities>;
let store: ArtifactStore;

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-merge-')));
  acts = createActivities({ home });
  store = new ArtifactStore(home.artifactsDir);
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

const jsonl = (rows: unknown[]) => store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const read = async <T>(ref: ArtifactRef): Promise<T[]> =>
  (await fs.readFile((await store.file(ref)), 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

function run(activity: (i: StageActivityInput) => Promise<StageActivityResult>, uses: string, w: unknown) {
  const input: StageActivityInput = { runId: 'r1', stageId: uses.replace('/', '-'), uses, kindVersion: '1', with: w as JsonObject, shellEnv: {} };
  return new MockActivityEnvironment({ attempt: 1 }).run(activity, input) as Promise<StageActivityResult>;
}

const item = (id: string, group: string, score: number, extra: Partial<ReviewItem> = {}): ReviewItem => ({ id, group, score, images: [], ...extra });
const ITEMS = [item('a|x', 'a', 0.9), item('a|y', 'a', 0.95), item('a|z', 'a', 0.9), item('b|x', 'b', 0.5), item('b|y', 'b', 0.99)];

async function decide(policy: JsonObject, items: ReviewItem[] = ITEMS) {
  const result = await run(acts['core/decide'], 'core/decide', { items: await jsonl(items), policy });
  const outputs = result.outputs as unknown as { decisions: ArtifactRef; policy: string; counts: Record<string, number> };
  const decisions = await read<Decision>(outputs.decisions);
  return { ...outputs, accepted: decisions.filter((d) => d.choice === 'accept').map((d) => d.id), decisions };
}

describe('core/decide', () => {
  it('accepts the top N of each group by score, breaking ties by id, and says so in every decision', async () => {
    const out = await decide({ name: 'top-1', top: 1 });
    expect(out.accepted).toEqual(['a|y', 'b|y']);
    expect(out.policy).toBe('top-1: accept the top 1 of each group by score; reject the rest');
    expect(out.counts).toEqual({ items: 5, accepted: 2, rejected: 3 });
    expect(out.decisions.every((d) => d.automatic && d.by === 'policy:top-1' && d.note === out.policy)).toBe(true);
    expect((await decide({ name: 'top-2', top: 2 })).accepted).toEqual(['a|x', 'a|y', 'b|x', 'b|y']);
  });

  it('combines a minimum score with the top N, and also accepts all or none', async () => {
    expect((await decide({ name: 'sure', minScore: 0.92 })).accepted).toEqual(['a|y', 'b|y']);
    expect((await decide({ name: 'top-sure', top: 2, minScore: 0.6 })).accepted).toEqual(['a|x', 'a|y', 'b|y']);
    expect((await decide({ name: 'everything' })).accepted).toHaveLength(5);
    const none = await decide({ name: 'nothing', accept: 'none' });
    expect(none.accepted).toEqual([]);
    expect(none.policy).toBe('nothing: reject every item');
  });

  it('refuses items with repeated ids or no id, naming the line', async () => {
    await expect(decide({ name: 'p' }, [item('q', 'g', 1), item('q', 'g', 2)])).rejects.toThrow(/repeated item ids/);
    await expect(decide({ name: 'p' }, [item('q', 'g', 1), { group: 'g' } as unknown as ReviewItem])).rejects.toThrow(/line 2: an item needs a string id/);
  });
});

const image = (name: string) => ({ path: `/store/${name}.jpg`, role: 'listing' as const, sha256: name.padEnd(64, '0') });
const listing = (id: string, category: string, images: string[]): ManifestRow =>
  ({ instance_id: id, asins: [id], title: `title ${id}`, category, images: images.map(image) });
const pair = (a: string, b: string): ReviewItem => item(`dup:${a}|${b}`, '', 0.9, { metadata: { instance_1: a, instance_2: b } });

describe('twin/merge', () => {
  it('merges accepted pairs transitively and keeps each image once, leaving rejected and undecided pairs apart', async () => {
    const manifest = await jsonl([
      listing('A', 'mug', ['a1', 'a2']), listing('B', 'mug', ['b1', 'a2']), listing('C', 'cup', ['c1']),
      listing('D', 'mug', ['d1']), listing('E', 'mug', ['e1']), listing('F', 'mug', ['f1']),
    ]);
    const candidates = await jsonl([pair('A', 'B'), pair('B', 'C'), pair('D', 'E'), pair('E', 'F')]);
    const decisions = await jsonl([
      { id: 'dup:A|B', choice: 'accept', by: 'ann', at: 't', automatic: false },
      { id: 'dup:B|C', choice: 'accept', by: 'ann', at: 't', automatic: false },
      { id: 'dup:D|E', choice: 'reject', by: 'ann', at: 't', automatic: false },
    ]);
    const result = await run(acts['twin/merge'], 'twin/merge', { instances: manifest, candidates, decisions });
    const outputs = result.outputs as unknown as { instances: ArtifactRef; report: ArtifactRef; counts: Record<string, number> };
    expect(outputs.counts).toEqual({ before: 6, after: 4, merged: 1, accepted: 2, rejected: 1, undecided: 1, duplicateImages: 1 });
    const rows = await read<ManifestRow>(outputs.instances);
    expect(rows.map((r) => r.instance_id)).toEqual(['A', 'D', 'E', 'F']);
    expect(rows[0]!.asins).toEqual(['A', 'B', 'C']);
    expect(rows[0]!.images.map((i) => i.path)).toEqual(['/store/a1.jpg', '/store/a2.jpg', '/store/b1.jpg', '/store/c1.jpg']);
    const report = JSON.parse(await fs.readFile((await store.file(outputs.report)), 'utf8')) as { mixedCategories: string[]; groups: unknown[] };
    expect(report.mixedCategories).toEqual(['A']);
    expect(report.groups).toEqual([{ instance_id: 'A', asins: ['A', 'B', 'C'], titles: ['title A', 'title B', 'title C'], categories: ['mug', 'mug', 'cup'] }]);
  });

  it('fails with what to pass when a candidate names an instance the manifest lacks', async () => {
    const manifest = await jsonl([listing('A', 'mug', ['a1'])]);
    const candidates = await jsonl([pair('A', 'Z')]);
    const decisions = await jsonl([{ id: 'dup:A|Z', choice: 'accept', by: 'ann', at: 't', automatic: false }]);
    await expect(run(acts['twin/merge'], 'twin/merge', { instances: manifest, candidates, decisions }))
      .rejects.toThrow(/candidate dup:A\|Z names instances A and Z, which are not both in with.instances/);
  });
});
