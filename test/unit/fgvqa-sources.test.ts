/*
 * fgvqa/build on the sources whose layouts hold more than files and folders, each fixture
 * written by the test in the dataset's own on-disk form:
 * - MET: ground_truth/mini_MET_database.json, images under images/MET/<id>/<n>.jpg
 * - ILIAS: core_db webdataset tar shards, instances from `__key__`, a corrupt member left
 *   out with the reason
 * - INQUIRE: INQUIRE-Rerank validation Parquet with the image bytes inside; an image listed
 *   under two text queries counts once
 * - published FGVQA files (Parquet and JSONL), read with their question as is
 * - nearest negatives: "no" images come from the identities nearest by embedding
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Field, List, Utf8, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { colourOf, imageStruct, writeIliasDataset, writeInquireDataset, writeMetDataset, writeTarShard } from '../support/fgvqa-datasets.js';
import { checkQueries, jpeg, writeParquetFile, type Row } from '../support/fgvqa-fixtures.js';
import { digestsUnder, sha256Of, storedDigest } from '../support/fgvqa-stored.js';

const env = activitiesInTempHome('fgvqa-sources');
const build = (w: Record<string, unknown>) => runStage(env.acts['fgvqa/build'], 'fgvqa/build', w);
type Out = { queries: ArtifactRef; published: ArtifactRef; counts: Record<string, number>; problems: string[] };
const outputs = async (w: Record<string, unknown>) => (await build(w)).outputs as unknown as Out;
const store = () => new ArtifactStore(env.home.artifactsDir);
const rowsOf = (ref: ArtifactRef) => jsonlRows<Row & { extra?: Record<string, unknown> }>(store(), ref);

describe('fgvqa/build sources', () => {
  it('reads MET from mini_MET_database.json, with images under images/ as the dataset loaders read them', async () => {
    const root = path.join(env.home.root, 'met');
    await writeMetDataset(root, 6, 5);
    const out = await outputs({ source: 'met', root, pairs: 16, multi: 16, seed: 1 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 16, 16);
    expect(out.counts).toMatchObject({ identities: 6, images: 30 });
    const files = await digestsUnder(path.join(root, 'images', 'MET'));
    expect(rows.every((r) => r.images.every((img) => files.has(storedDigest(store(), img))))).toBe(true);
    expect(new Set(rows.flatMap((r) => r.identities))).toEqual(new Set(['1000', '1001', '1002', '1003', '1004', '1005']));
    expect(rows[0]!.question).toMatch(/same work of art/);
    expect((await rowsOf(out.published))[0]).toMatchObject({ dataset_source: 'fgvqa_met' });

    await fs.writeFile(path.join(root, 'ground_truth', 'mini_MET_database.json'), JSON.stringify([{ id: 1, path: 'MET/9/9.jpg' }]));
    expect((await failure(build({ source: 'met', root }))).message).toMatch(/the first image, MET\/9\/9\.jpg, is neither in .*met nor in .*met\/images/);
    await fs.writeFile(path.join(root, 'ground_truth', 'mini_MET_database.json'), JSON.stringify([{ path: 'MET/9/9.jpg' }]));
    expect((await failure(build({ source: 'met', root }))).message).toMatch(/entry 0 needs "id" \(the exhibit\) and "path"/);
    expect((await failure(build({ source: 'met', root: env.home.root }))).message).toMatch(/no mini_MET_database\.json in /);
  });

  it('reads ILIAS core_db webdataset shards: instances from __key__, a corrupt image left out with the reason', async () => {
    const root = path.join(env.home.root, 'ilias');
    await fs.mkdir(root, { recursive: true });
    await writeIliasDataset(root, [[0, 1, 2], [3, 4, 5]], 4);
    await writeTarShard(path.join(root, 'ilias-core-db-000009.tar'), [['obj_000/pos/P000_99.jpg', Buffer.from('this is not a jpeg')]]);
    await fs.writeFile(path.join(root, 'ilias-core-queries-img-000000.tar'), 'queries are not read');
    const out = await outputs({ source: 'ilias', root, pairs: 20, multi: 12, seed: 2 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 20, 12);
    expect(out.counts).toMatchObject({ identities: 6, images: 24, skipped: 1 });
    expect(out.problems).toEqual([expect.stringMatching(/ilias-core-db-000009\.tar: obj_000\/pos\/P000_99\.jpg: not a JPEG, PNG, WebP or GIF image$/)]);
    expect(new Set(rows.flatMap((r) => r.identities))).toEqual(new Set(['obj_000', 'obj_001', 'obj_002', 'obj_003', 'obj_004', 'obj_005']));
    const first = rows[0]!.images[0]!;
    expect(first).toMatch(/^artifact:sha256:[0-9a-f]{64}$/);
    expect((await store().read(first)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(rows[0]!.question).toMatch(/same object instance/);

    await fs.writeFile(path.join(root, 'ilias-core-db-000002.tar'), 'truncated garbage that is not a tar archive at all'.repeat(20));
    expect((await failure(build({ source: 'ilias', root }))).message).toMatch(/ilias-core-db-000002\.tar: not a readable tar shard/);
    expect((await failure(build({ source: 'ilias', root: path.join(env.home.root, 'met') }))).message).toMatch(/no core_db webdataset shards \(ilias-core-db-\*\.tar\) in .*met; it holds ground_truth, images/);
  });

  it('reads INQUIRE-Rerank validation Parquet: species from inat24_species_name, each image once', async () => {
    const root = path.join(env.home.root, 'inquire');
    await writeInquireDataset(root, 5, 4, [{ image: await jpeg(1, 2, 3), species: null }]);
    const out = await outputs({ source: 'inquire', root, pairs: 12, multi: 8 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 12, 8);
    expect(out.counts).toMatchObject({ identities: 5, images: 20, skipped: 0 });
    expect(new Set(rows.flatMap((r) => r.identities))).toEqual(new Set(['Species 0', 'Species 1', 'Species 2', 'Species 3', 'Species 4']));
    expect(rows[0]!.question).toMatch(/same species/);
    expect((await failure(build({ source: 'inquire', root: path.join(env.home.root, 'met') }))).message).toMatch(/no validation Parquet files/);
  });

  it('reads published FGVQA rows with their question as is, from Parquet and from JSONL', async () => {
    const root = path.join(env.home.root, 'fgvqa-published');
    const red = await jpeg(220, 10, 10);
    const blue = await jpeg(10, 10, 220);
    const rows = [
      { source: 'fgvqa_cub', question: 'Published pair prompt, kept verbatim?', answer: 'yes', type: 'pairwise', images: [red, red], extra: JSON.stringify({ species: 'Gull' }) },
      { source: 'fgvqa_cub', question: 'Published multi prompt <answer>n</answer>', answer: '2', type: 'multiple_choice', images: [red, red, blue, red], extra: '{}' },
      { source: 'twin', question: 'Twin prompt', answer: 'no', type: 'pairwise', images: [red, blue], extra: JSON.stringify({ id: 'twin-own-id' }) },
    ];
    await writeParquetFile(path.join(root, 'data', 'test-00000-of-00001.parquet'), {
      dataset_source: vectorFromArray(rows.map((r) => r.source), new Utf8()),
      question: vectorFromArray(rows.map((r) => r.question), new Utf8()),
      answer: vectorFromArray(rows.map((r) => r.answer), new Utf8()),
      question_type: vectorFromArray(rows.map((r) => r.type), new Utf8()),
      images: vectorFromArray(rows.map((r) => r.images.map((bytes, i) => ({ bytes, path: `${i}.jpg` }))), new List(new Field('item', imageStruct, true))),
      extra: vectorFromArray(rows.map((r) => r.extra), new Utf8()),
    });
    const out = await outputs({ source: 'fgvqa', root });
    const got = await rowsOf(out.queries);
    expect(got.map((r) => [r.id, r.source, r.type, r.answer, r.question, r.images.length])).toEqual([
      ['cub-pair-00001', 'cub', 'pair', 'yes', rows[0]!.question, 2],
      ['cub-multi-00001', 'cub', 'multi', '2', rows[1]!.question, 4],
      ['twin-own-id', 'twin-eval', 'pair', 'no', 'Twin prompt', 2],
    ]);
    expect(got[0]!.extra).toEqual({ species: 'Gull' });
    expect(await store().read(got[1]!.images[2]!)).toEqual(blue);
    expect(out.counts).toMatchObject({ pairs: 2, multi: 1, answer_yes: 1, answer_no: 1, answer_2: 1 });
    const onlyTwin = await rowsOf((await outputs({ source: 'fgvqa', root, subsets: ['twin-eval'] })).queries);
    expect(onlyTwin.map((r) => r.id)).toEqual(['twin-own-id']);

    // Our own published export reads back as the same queries.
    const met = path.join(env.home.root, 'met-for-published');
    await writeMetDataset(met, 6, 5);
    const built = await outputs({ source: 'met', root: met, pairs: 8, multi: 8 });
    const file = (await new ArtifactStore(env.home.artifactsDir).file(built.published));
    const jsonl = path.join(env.home.root, 'published.jsonl');
    await fs.copyFile(file, jsonl);
    const back = await rowsOf((await outputs({ source: 'fgvqa', root: jsonl })).queries);
    const original = await rowsOf(built.queries);
    expect(back.map((r) => [r.id, r.source, r.type, r.question, r.answer, r.images])).toEqual(original.map((r) => [r.id, r.source, r.type, r.question, r.answer, r.images]));

    await fs.writeFile(jsonl, `${JSON.stringify({ dataset_source: 'fgvqa_cub', question: 'q', answer: 'maybe', question_type: 'pairwise', images: ['a', 'b'] })}\n`);
    expect((await failure(build({ source: 'fgvqa', root: jsonl }))).message).toMatch(/published\.jsonl:1: answer "maybe" is not a yes\/no answer/);
    await fs.writeFile(jsonl, `${JSON.stringify({ dataset_source: 'fgvqa_cars', question: 'q', answer: 'yes', question_type: 'pairwise', images: [] })}\n`);
    expect((await failure(build({ source: 'fgvqa', root: jsonl }))).message).toMatch(/published\.jsonl:1: unknown dataset_source "fgvqa_cars"/);
  });

  it('leaves out a published row whose image path leaves the folder, is missing or is not an image, saying which and why', async () => {
    const root = path.join(env.home.root, 'published-paths');
    await fs.mkdir(path.join(root, 'images'), { recursive: true });
    const names = ['a', 'b', 'c'];
    for (const [i, n] of names.entries()) await fs.writeFile(path.join(root, 'images', `${n}.jpg`), await jpeg(...colourOf(i, 0), 32));
    await fs.writeFile(path.join(root, 'images', 'text.jpg'), 'not an image');
    await fs.writeFile(path.join(env.home.root, 'outside.jpg'), await jpeg(...colourOf(5, 0), 32));
    await fs.symlink(path.join(env.home.root, 'outside.jpg'), path.join(root, 'images', 'link.jpg'));
    const row = (second: unknown) => JSON.stringify({ dataset_source: 'fgvqa_cub', question: 'Same bird?', answer: 'no', question_type: 'pairwise', images: ['images/a.jpg', second] });
    const file = path.join(root, 'rows.jsonl');
    await fs.writeFile(file, ['images/b.jpg', '../outside.jpg', 'images/link.jpg', 'images/gone.jpg', 'images/text.jpg', { path: 'images/c.jpg' }].map(row).join('\n'));
    await fs.appendFile(file, `\n${JSON.stringify({ dataset_source: 'fgvqa_cub', question: 'Same bird?', answer: 'yes', question_type: 'pairwise', images: ['images/c.jpg', { path: 'images/c.jpg' }] })}\n`);
    const out = await outputs({ source: 'fgvqa', root: file });
    const kept = await rowsOf(out.queries);
    expect(kept.map((r) => r.images.map((img) => storedDigest(store(), img)))).toEqual([
      [await sha256Of(path.join(root, 'images', 'a.jpg')), await sha256Of(path.join(root, 'images', 'b.jpg'))],
      [await sha256Of(path.join(root, 'images', 'a.jpg')), await sha256Of(path.join(root, 'images', 'c.jpg'))],
      [await sha256Of(path.join(root, 'images', 'c.jpg')), await sha256Of(path.join(root, 'images', 'c.jpg'))],
    ]);
    expect(out.problems).toEqual([
      `${file}:2: image 1: ../outside.jpg is outside the dataset folder ${root}`,
      `${file}:3: image 1: ${root}/images/link.jpg leads to ${env.home.root}/outside.jpg, outside the dataset folder ${root}`,
      `${file}:4: image 1: ${root}/images/gone.jpg is missing`,
      `${file}:5: image 1: ${root}/images/text.jpg is not a JPEG, PNG, WebP or GIF image`,
    ]);
    expect(out.counts).toMatchObject({ skipped: 4, pairs: 3 });
  });

  it('draws "no" images from the nearest identities by embedding when negatives is nearest', async () => {
    // Two families of identities, reds and blues: the nearest three of a red one are the other reds.
    const root = path.join(env.home.root, 'met-families');
    const entries: Array<{ id: number; path: string }> = [];
    for (let id = 0; id < 8; id++) {
      const family = id < 4 ? [200 + 12 * id, 30, 20] : [20, 40 + 12 * id, 210];
      for (let n = 0; n < 4; n++) {
        const rel = `MET/${id}/${n}.jpg`;
        await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
        await fs.writeFile(path.join(root, rel), await jpeg(family[0]! + n, family[1]! + n, family[2]! + n, 64));
        entries.push({ id, path: rel });
      }
    }
    await fs.writeFile(path.join(root, 'mini_MET_database.json'), JSON.stringify(entries));
    const familyOf = (id: string) => (Number(id) < 4 ? 'red' : 'blue');
    const near = await rowsOf((await outputs({ source: 'met', root, pairs: 24, multi: 16, negatives: 'nearest', nearest: 3 })).queries);
    checkQueries(near, 24, 16);
    for (const r of near) expect(new Set(r.identities.map(familyOf)).size, r.id).toBe(1);
    const random = await rowsOf((await outputs({ source: 'met', root, pairs: 24, multi: 16 })).queries);
    expect(random.some((r) => new Set(r.identities.map(familyOf)).size > 1)).toBe(true);
  });
});
