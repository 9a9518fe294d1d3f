/*
 * fgvqa/build on fixtures written in each source's own layout (CUB-200-2011 index files,
 * GLDv2 train.csv + train/a/b/c/, a twin/assemble eval split), with real JPEGs:
 * - pairs exactly half yes / half no, multi answers exactly a quarter each, answers that
 *   agree with the identities, no image twice in a query, no query twice, test split only
 * - the same seed gives the same queries; the published FGVQA row shape beside ours
 * - queries name copies in the artifact store, so an image edited in place changes them
 * - paths that leave the dataset folder (by name or through a symbolic link), missing
 *   files, folders and text files named .jpg are left out with where and why, and never
 *   reach a query; nearest negatives survive an image the encoder cannot decode
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
import { colourOf, writeCubDataset } from '../support/fgvqa-datasets.js';
import { checkQueries, jpeg, writeCub, type Row } from '../support/fgvqa-fixtures.js';
import { digestsUnder, sha256Of, storedDigest } from '../support/fgvqa-stored.js';

const env = activitiesInTempHome('fgvqa-build');
const build = (w: Record<string, unknown>, stageId?: string) => runStage(env.acts['fgvqa/build'], 'fgvqa/build', w, stageId);
type Out = { queries: ArtifactRef; published: ArtifactRef; counts: Record<string, number>; problems: string[] };
const outputs = async (w: Record<string, unknown>, stageId?: string) => (await build(w, stageId)).outputs as unknown as Out;
const store = () => new ArtifactStore(env.home.artifactsDir);
const rowsOf = (ref: ArtifactRef) => jsonlRows<Row>(store(), ref);
/** The dataset files the queries show (each query image is a store copy of one of them). */
const shown = async (rows: Row[], root: string) => {
  const files = await digestsUnder(root);
  return new Set(rows.flatMap((r) => r.images.map((image) => files.get(storedDigest(store(), image)) ?? `not from ${root}: ${image}`)));
};

/** A CUB entry appended to the index files: `rel` under images/, of class `label`, in the test split. */
async function addCubEntry(root: string, id: number, rel: string, label: number): Promise<void> {
  await fs.appendFile(path.join(root, 'images.txt'), `${id} ${rel}\n`);
  await fs.appendFile(path.join(root, 'image_class_labels.txt'), `${id} ${label}\n`);
  await fs.appendFile(path.join(root, 'train_test_split.txt'), `${id} 0\n`);
}

describe('fgvqa/build', () => {
  it('builds balanced CUB queries from the test split only, the same for the same seed', async () => {
    const root = path.join(env.home.root, 'CUB_200_2011');
    await writeCubDataset(root, 8, 6);
    const out = await outputs({ source: 'cub', root, pairs: 40, multi: 40, seed: 3 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 40, 40);
    expect(out.counts).toMatchObject({ identities: 8, images: 48, pairs: 40, multi: 40, answer_yes: 20, answer_0: 10, skipped: 0 });
    const train = new Set((await fs.readFile(path.join(root, 'images.txt'), 'utf8')).split('\n').filter((l, i) => l && i % 7 === 0).map((l) => path.join(root, 'images', l.split(' ')[1]!)));
    const used = await shown(rows, path.join(root, 'images'));
    expect([...used].filter((f) => train.has(f) || !f.startsWith(root))).toEqual([]);
    expect(rows[0]!.identities[0]).toMatch(/^\d{3}\.Species_\d$/);
    expect(rows[0]!.question).toMatch(/same species/);
    const published = await jsonlRows<Record<string, unknown>>(store(), out.published);
    expect(published[0]).toMatchObject({ dataset_source: 'fgvqa_cub', question_type: 'pairwise', answer: rows[0]!.answer, images: rows[0]!.images, extra: { id: rows[0]!.id } });
    const again = await outputs({ source: 'cub', root, pairs: 40, multi: 40, seed: 3 });
    expect(again.queries.sha256).toBe(out.queries.sha256);
    const other = await outputs({ source: 'cub', root, pairs: 40, multi: 40, seed: 4 });
    expect(other.queries.sha256).not.toBe(out.queries.sha256);
  });

  it('names store copies in its queries, so an image edited in place (same name, same mtime) changes the queries', async () => {
    const root = path.join(env.home.root, 'cub-edit');
    await writeCubDataset(root, 4, 5);
    const before = await outputs({ source: 'cub', root, pairs: 8, multi: 8 });
    const [file] = [...(await shown(await rowsOf(before.queries), path.join(root, 'images')))];
    const { atime, mtime } = await fs.stat(file!);
    const old = await sha256Of(file!);
    await fs.writeFile(file!, await jpeg(...colourOf(7, 7), 32));
    await fs.utimes(file!, atime, mtime);
    const after = await outputs({ source: 'cub', root, pairs: 8, multi: 8 });
    expect(after.queries.sha256).not.toBe(before.queries.sha256);
    const digests = new Set((await rowsOf(after.queries)).flatMap((r) => r.images.map((i) => storedDigest(store(), i))));
    expect([digests.has(old), digests.has(await sha256Of(file!))]).toEqual([false, true]);
  });

  it('refuses paths that leave the dataset folder, by name or through a symbolic link, and names each in problems', async () => {
    const root = path.join(env.home.root, 'cub-outside');
    const outside = path.join(env.home.root, 'outside-cub');
    await writeCubDataset(root, 4, 4);
    await fs.mkdir(path.join(outside, 'flock'), { recursive: true });
    await fs.writeFile(path.join(outside, 'bird.jpg'), await jpeg(...colourOf(20, 0), 32));
    for (let k = 0; k < 3; k++) await fs.writeFile(path.join(outside, 'flock', `x${k}.jpg`), await jpeg(...colourOf(21, k), 32));
    await fs.symlink(path.join(outside, 'bird.jpg'), path.join(root, 'images', '001.Species_1', 'linked.jpg'));
    await fs.symlink(path.join(outside, 'flock'), path.join(root, 'images', 'linked-folder'));
    await addCubEntry(root, 21, '../../../../etc/passwd', 1);
    await addCubEntry(root, 22, '001.Species_1/linked.jpg', 1);
    for (let k = 0; k < 3; k++) await addCubEntry(root, 23 + k, `linked-folder/x${k}.jpg`, 2);
    const out = await outputs({ source: 'cub', root, pairs: 16, multi: 16 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 16, 16);
    expect(out.problems).toContainEqual(`${root}/images.txt:21: ../../../../etc/passwd is outside the dataset folder ${root}`);
    expect(out.problems).toContainEqual(expect.stringMatching(new RegExp(`^identity 001\\.Species_1: .*/linked\\.jpg leads to ${outside}/bird\\.jpg, outside the dataset folder`)));
    expect(out.problems.filter((p) => /linked-folder\/x\d\.jpg leads to .*outside-cub\/flock\/x\d\.jpg, outside the dataset folder/.test(p))).toHaveLength(3);
    expect(out.counts).toMatchObject({ skipped: 5, images: 16 });
    expect([...(await shown(rows, path.join(root, 'images')))].every((f) => f.startsWith(path.join(root, 'images', '0')))).toBe(true);
  });

  it('leaves out a missing file, a folder and a text file named .jpg with the reason, and never shows them in a query', async () => {
    const root = path.join(env.home.root, 'cub-broken');
    await writeCubDataset(root, 4, 5);
    const species = (s: number, n: number) => path.join(root, 'images', `00${s}.Species_${s}`, `00${s}.Species_${s}_${n}.jpg`);
    await fs.rm(species(1, 2));
    await fs.writeFile(species(2, 8), 'this is not a JPEG\n');
    await fs.rm(species(3, 14));
    await fs.mkdir(species(3, 14));
    const out = await outputs({ source: 'cub', root, pairs: 16, multi: 16 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 16, 16);
    expect(out.problems).toEqual(expect.arrayContaining([
      `identity 001.Species_1: ${species(1, 2)} is missing`,
      `identity 002.Species_2: ${species(2, 8)} is not a JPEG, PNG, WebP or GIF image`,
      `identity 003.Species_3: ${species(3, 14)} is not a regular file`,
    ]));
    expect(out.counts).toMatchObject({ identities: 4, images: 17, skipped: 3 });
    const used = await shown(rows, path.join(root, 'images'));
    expect([species(1, 2), species(2, 8), species(3, 14)].filter((f) => used.has(f))).toEqual([]);
  });

  it('draws nearest negatives past an image that is not one and an image the encoder cannot decode', async () => {
    const root = path.join(env.home.root, 'cub-nearest');
    await writeCubDataset(root, 6, 4);
    // Each species' test images are the 2nd to 5th it lists; the encoder takes the first two by path.
    const first = (s: number) => [2, 3, 4, 5].map((k) => path.join(root, 'images', `00${s}.Species_${s}`, `00${s}.Species_${s}_${(s - 1) * 5 + k}.jpg`)).sort()[0]!;
    await fs.writeFile(first(1), 'plain text');
    await fs.writeFile(first(2), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('then garbage')]));
    const out = await outputs({ source: 'cub', root, pairs: 8, multi: 8, negatives: 'nearest', nearest: 3 });
    checkQueries(await rowsOf(out.queries), 8, 8);
    expect(out.problems).toEqual(expect.arrayContaining([
      `identity 001.Species_1: ${first(1)} is not a JPEG, PNG, WebP or GIF image`,
      expect.stringMatching(new RegExp(`^identity 002\\.Species_2: ${first(2).replace(/\./g, '\\.')}: the image encoder cannot read it`)),
    ]));
  });

  it('reads GLDv2 train.csv (URLs with commas) into the train/a/b/c layout', async () => {
    const root = path.join(env.home.root, 'gldv2');
    const lines = ['id,url,landmark_id'];
    for (let i = 0; i < 30; i++) {
      const id = `${(0xabc000 + i).toString(16)}ef12`;
      lines.push(`${id},https://example.org/a,b/${i}.jpg,${1000 + (i % 5)}`);
      await fs.mkdir(path.join(root, 'train', 'a', 'b', 'c'), { recursive: true });
      await fs.writeFile(path.join(root, 'train', 'a', 'b', 'c', `${id}.jpg`), await jpeg(...colourOf(i % 5, Math.floor(i / 5)), 32));
    }
    await fs.writeFile(path.join(root, 'train.csv'), lines.join('\n') + '\n');
    const out = await outputs({ source: 'landmarks', root, pairs: 10, multi: 8 });
    const rows = await rowsOf(out.queries);
    checkQueries(rows, 10, 8);
    expect([...(await shown(rows, root))].every((f) => new RegExp(`^${root}/train/a/b/c/abc0[0-9a-f]{2}ef12\\.jpg$`).test(f))).toBe(true);
    expect(new Set(rows.flatMap((r) => r.identities))).toEqual(new Set(['1000', '1001', '1002', '1003', '1004']));
  });

  it('reads the eval split of a twin/assemble folder, leaving generated images out', async () => {
    const root = path.join(env.home.root, 'twin');
    await fs.mkdir(path.join(root, 'images'), { recursive: true });
    const rows: string[] = [];
    const meta: string[] = [];
    for (let i = 0; i < 6; i++) {
      for (let k = 0; k < 4; k++) await fs.writeFile(path.join(root, 'images', `i${i}-${k}.jpg`), await jpeg(...colourOf(i, k), 32));
      await fs.writeFile(path.join(root, 'images', `gen-${i}.jpg`), await jpeg(...colourOf(i, 9), 32));
      for (let k = 0; k < 4; k++) {
        rows.push(JSON.stringify({ question: 'q', answer: 'yes', image_1: `images/i${i}-${k}.jpg`, image_2: `images/i${i}-${(k + 1) % 4}.jpg` }));
        meta.push(JSON.stringify({ index: meta.length, kind: 'positive', instance_1: `I${i}`, instance_2: `I${i}` }));
      }
      rows.push(JSON.stringify({ question: 'q', answer: 'no', image_1: `images/i${i}-0.jpg`, image_2: `images/gen-${i}.jpg` }));
      meta.push(JSON.stringify({ index: meta.length, kind: 'generated-negative', instance_1: `I${i}`, instance_2: `I${i}` }));
    }
    await fs.writeFile(path.join(root, 'eval.jsonl'), rows.join('\n') + '\n');
    await fs.writeFile(path.join(root, 'eval.meta.jsonl'), meta.join('\n') + '\n');
    const out = await outputs({ source: 'twin-eval', root, pairs: 12, multi: 12 });
    const queries = await rowsOf(out.queries);
    checkQueries(queries, 12, 12);
    expect(out.counts).toMatchObject({ identities: 6, images: 24 });
    expect([...(await shown(queries, root))].filter((f) => f.includes('gen-'))).toEqual([]);
    expect(queries[0]!.question).toMatch(/same object instance/);

    await fs.appendFile(path.join(root, 'eval.meta.jsonl'), 'null\n');
    expect((await failure(build({ source: 'twin-eval', root }))).message).toMatch(/eval\.meta\.jsonl:31: expected a JSON object, got null/);
  });

  it('says what a source has when it is too small for the queries asked', async () => {
    const root = path.join(env.home.root, 'tiny');
    await writeCub(root, 2, 3);
    const err = await failure(build({ source: 'cub', root, pairs: 20, multi: 8 }));
    expect(err.message).toMatch(/fgvqa\/build, cub\): 2 identities \(2 with 2\+ images\): at most 6 yes pairs \(asked for 10\); no identity with the 4 images a multi query answered 3 needs; fewer than 4 identities/);
    const missing = await failure(build({ source: 'cub', root: path.join(env.home.root, 'nowhere') }));
    expect(missing.message).toMatch(/images.txt is missing/);
  });

  it('says how many images it left out when what is left is too small', async () => {
    // writeCub lists images but writes none: every drawn one is missing.
    const root = path.join(env.home.root, 'no-files');
    await writeCub(root, 4, 4);
    const err = await failure(build({ source: 'cub', root, pairs: 8, multi: 8 }));
    expect(err.message).toMatch(/after leaving out \d+ image\(s\): identity \d{3}\.Species_\d: .*\.jpg is missing/);
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
