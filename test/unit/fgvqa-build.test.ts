/*
 * fgvqa/build on fixtures written in each source's own layout (CUB-200-2011 index files,
 * GLDv2 train.csv + train/a/b/c/, a twin/assemble eval split):
 * - pairs exactly half yes / half no, multi answers exactly a quarter each, answers that
 *   agree with the identities, no image twice in a query, no query twice, test split only
 * - the same seed gives the same queries; the published FGVQA row shape beside ours
 * - a source too small for the counts asked fails, saying what it has
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { makeQueries } from '../../activities/fgvqa/queries.js';
import { checkQueries, writeCub, type Row } from '../support/fgvqa-fixtures.js';

const env = activitiesInTempHome('fgvqa-build');
const build = (w: Record<string, unknown>) => runStage(env.acts.buildFgvqa, 'fgvqa/build', w);

describe('fgvqa/build', () => {
  it('builds balanced CUB queries from the test split only, the same for the same seed', async () => {
    const root = path.join(env.home.root, 'CUB_200_2011');
    await writeCub(root, 8, 6);
    const out = (await build({ source: 'cub', root, pairs: 40, multi: 40, seed: 3 })).outputs as unknown as { queries: ArtifactRef; published: ArtifactRef; counts: Record<string, number> };
    const store = new ArtifactStore(env.home.artifactsDir);
    const rows = await jsonlRows<Row>(store, out.queries);
    checkQueries(rows, 40, 40);
    expect(out.counts).toMatchObject({ identities: 8, images: 48, pairs: 40, multi: 40, answer_yes: 20, answer_0: 10 });
    expect(rows.every((r) => r.images.every((img) => img.startsWith(path.join(root, 'images')) && !/img_(1|2|9|10)\.jpg$/.test(img)))).toBe(true);
    expect(rows[0]!.identities[0]).toMatch(/^\d{3}\.Species_\d$/);
    expect(rows[0]!.question).toMatch(/same species/);
    const published = await jsonlRows<Record<string, unknown>>(store, out.published);
    expect(published[0]).toMatchObject({ dataset_source: 'fgvqa_cub', question_type: 'pairwise', answer: rows[0]!.answer, images: rows[0]!.images, extra: { id: rows[0]!.id } });
    const again = (await build({ source: 'cub', root, pairs: 40, multi: 40, seed: 3 })).outputs as unknown as { queries: ArtifactRef };
    expect(again.queries.sha256).toBe(out.queries.sha256);
    const other = (await build({ source: 'cub', root, pairs: 40, multi: 40, seed: 4 })).outputs as unknown as { queries: ArtifactRef };
    expect(other.queries.sha256).not.toBe(out.queries.sha256);
  });

  it('reads GLDv2 train.csv (URLs with commas) into the train/a/b/c layout', async () => {
    const root = path.join(env.home.root, 'gldv2');
    await fs.mkdir(root, { recursive: true });
    const lines = ['id,url,landmark_id'];
    for (let i = 0; i < 30; i++) lines.push(`${(0xabc000 + i).toString(16)}ef12,https://example.org/a,b/${i}.jpg,${1000 + (i % 5)}`);
    await fs.writeFile(path.join(root, 'train.csv'), lines.join('\n') + '\n');
    const out = (await build({ source: 'landmarks', root, pairs: 10, multi: 8 })).outputs as unknown as { queries: ArtifactRef };
    const rows = await jsonlRows<Row>(new ArtifactStore(env.home.artifactsDir), out.queries);
    checkQueries(rows, 10, 8);
    expect(rows[0]!.images[0]).toMatch(new RegExp(`${root}/train/a/b/c/abc0[0-9a-f]{2}ef12\\.jpg$`));
    expect(new Set(rows.flatMap((r) => r.identities))).toEqual(new Set(['1000', '1001', '1002', '1003', '1004']));
  });

  it('reads the eval split of a twin/assemble folder, leaving generated images out', async () => {
    const root = path.join(env.home.root, 'twin');
    await fs.mkdir(root, { recursive: true });
    const rows: string[] = [];
    const meta: string[] = [];
    for (let i = 0; i < 6; i++) {
      for (let k = 0; k < 4; k++) {
        rows.push(JSON.stringify({ question: 'q', answer: 'yes', image_1: `images/i${i}-${k}.jpg`, image_2: `images/i${i}-${(k + 1) % 4}.jpg` }));
        meta.push(JSON.stringify({ index: meta.length, kind: 'positive', instance_1: `I${i}`, instance_2: `I${i}` }));
      }
      rows.push(JSON.stringify({ question: 'q', answer: 'no', image_1: `images/i${i}-0.jpg`, image_2: `images/gen-${i}.jpg` }));
      meta.push(JSON.stringify({ index: meta.length, kind: 'generated-negative', instance_1: `I${i}`, instance_2: `I${i}` }));
    }
    await fs.writeFile(path.join(root, 'eval.jsonl'), rows.join('\n') + '\n');
    await fs.writeFile(path.join(root, 'eval.meta.jsonl'), meta.join('\n') + '\n');
    const out = (await build({ source: 'twin-eval', root, pairs: 12, multi: 12 })).outputs as unknown as { queries: ArtifactRef; counts: Record<string, number> };
    const queries = await jsonlRows<Row>(new ArtifactStore(env.home.artifactsDir), out.queries);
    checkQueries(queries, 12, 12);
    expect(out.counts).toMatchObject({ identities: 6, images: 24 });
    expect(queries.some((q) => q.images.some((img) => img.includes('gen-')))).toBe(false);
    expect(queries[0]!.question).toMatch(/same object instance/);
  });

  it('says what a source has when it is too small for the queries asked', async () => {
    const root = path.join(env.home.root, 'tiny');
    await writeCub(root, 2, 3);
    const err = await failure(build({ source: 'cub', root, pairs: 20, multi: 8 }));
    expect(err.message).toMatch(/fgvqa\/build, cub\): 2 identities \(2 with 2\+ images\): at most 6 yes pairs \(asked for 10\); no identity with the 4 images a multi query answered 3 needs; fewer than 4 identities/);
    const missing = await failure(build({ source: 'cub', root: path.join(env.home.root, 'nowhere') }));
    expect(missing.message).toMatch(/images.txt is missing/);
  });
});

describe('makeQueries', () => {
  it('never shows one image twice in a query, even when a source lists it under two identities', () => {
    // "shared.jpg" is filed under both A and B, as duplicates in real sources sometimes are.
    const identities = ['A', 'B', 'C', 'D'].map((id) => ({ id, images: [...(id <= 'B' ? ['shared.jpg'] : []), `${id}1.jpg`, `${id}2.jpg`, `${id}3.jpg`] }));
    const queries = makeQueries(identities, { pairs: 24, multi: 32, seed: 5 });
    expect(queries).toHaveLength(56);
    for (const q of queries) expect(new Set(q.images).size, q.images.join(',')).toBe(q.images.length);
    expect(queries.some((q) => q.images.includes('shared.jpg'))).toBe(true);
  });
});
