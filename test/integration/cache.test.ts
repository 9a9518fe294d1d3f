/**
 * The stage cache serves only what is still true, on a real Temporal dev server:
 * - a cached stage whose output folder was moved away, or whose files changed, runs again
 * - a cached data stage whose output artifact left the store runs again
 * - an image edited in place (same size, mtime restored) changes the manifest, the
 *   prepared image and the dataset: nothing downstream comes from the cache
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactRef } from '../../engine/types.js';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { RunStatus } from '../../workflows/messages.js';
import { startHarness, summary, type Harness } from './harness.js';

let h: Harness;
let data: string;
beforeAll(async () => {
  h = await startHarness();
  data = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-cache-data-'));
});
afterAll(async () => {
  await h?.stop();
  await fs.rm(data, { recursive: true, force: true });
});

async function run(yaml: string): Promise<RunStatus> {
  const done = await h.result(await h.submit(yaml));
  expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
  return done;
}
const staleNotes = (s: RunStatus, id: string) => s.stages[id]!.events.filter((e) => e.event === 'cache-stale').map((e) => e.note ?? '');

const FOLDER = `
name: folder
stages:
  make:
    uses: core/shell
    cache: true
    with:
      run: |
        mkdir -p "$TWINFLOW_STAGE_DIR/out" && echo one > "$TWINFLOW_STAGE_DIR/out/a.txt" && echo two > "$TWINFLOW_STAGE_DIR/out/b.txt"
        echo "{\\"dir\\": \\"$TWINFLOW_STAGE_DIR/out\\"}"
`;

describe('the stage cache', () => {
  it('runs a cached stage again when the folder its outputs name was moved away or changed', async () => {
    const first = await run(FOLDER);
    const dir = first.stages.make!.outputs!.dir as string;
    expect((await run(FOLDER)).stages.make!.state).toBe('cached');

    await fs.rename(dir, `${dir}.moved`);
    const afterMove = await run(FOLDER);
    expect(afterMove.stages.make!.state).toBe('succeeded');
    expect(staleNotes(afterMove, 'make').join()).toContain(`${dir} no longer exists`);

    const fresh = afterMove.stages.make!.outputs!.dir as string;
    expect((await run(FOLDER)).stages.make!.state).toBe('cached');
    await fs.rm(path.join(fresh, 'b.txt'));
    const afterDelete = await run(FOLDER);
    expect(afterDelete.stages.make!.state).toBe('succeeded');
    expect(staleNotes(afterDelete, 'make').join()).toContain(`${fresh} changed after the stage wrote it`);
  });

  it('serves a stage whose outputs name its own stage folder: the attempt lock there is not part of it', async () => {
    const own = `
name: own
stages:
  make: { uses: core/shell, cache: true, with: { run: 'echo x > "$TWINFLOW_STAGE_DIR/x.txt"; echo "{\\"dir\\": \\"$TWINFLOW_STAGE_DIR\\"}"' } }
`;
    await run(own);
    const second = await run(own);
    expect(second.stages.make!.state).toBe('cached');
    expect(staleNotes(second, 'make')).toEqual([]);
  });

  it('runs a cached data stage again when its output artifact is no longer in the store', async () => {
    await fs.mkdir(path.join(data, 'gone'), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c04020' } }).png().toFile(path.join(data, 'gone', 'a.png'));
    await fs.writeFile(path.join(data, 'gone', 'meta.jsonl'), `${JSON.stringify({ parent_asin: 'A', title: 'a mug', main_category: 'Home', images: [{ large: 'a.png' }] })}\n`);
    const yaml = `
name: gone
stages:
  source: { uses: twin/source, with: { catalog: '${data}/gone/meta.jsonl', categories: [{ category: mug, title: mug }] } }
`;
    const first = await run(yaml);
    const ref = first.stages.source!.outputs!.instances as unknown as ArtifactRef;
    expect((await run(yaml)).stages.source!.state).toBe('cached');
    await fs.rm((await new ArtifactStore(h.home.artifactsDir).file(ref)));
    const again = await run(yaml);
    expect(again.stages.source!.state).toBe('succeeded');
    expect(staleNotes(again, 'source').join()).toContain(`${ref.uri} is no longer in the artifact store`);
  });

  it('takes an image edited in place, with its size and mtime restored, into the manifest, the prepared image and the dataset', async () => {
    const dir = path.join(data, 'edit');
    await fs.mkdir(dir, { recursive: true });
    const colours = ['#d03020', '#2040c0', '#20a040', '#c0a020'];
    for (const [i, c] of colours.entries()) await sharp({ create: { width: 32, height: 32, channels: 3, background: c } }).png().toFile(path.join(dir, `${i}.png`));
    await fs.writeFile(path.join(dir, 'meta.jsonl'), [
      { parent_asin: 'A', title: 'red mug', main_category: 'Home', images: [{ large: '0.png' }, { large: '1.png' }] },
      { parent_asin: 'B', title: 'green mug', main_category: 'Home', images: [{ large: '2.png' }, { large: '3.png' }] },
    ].map((l) => JSON.stringify(l)).join('\n'));
    const yaml = `
name: edit
stages:
  source: { uses: twin/source, with: { catalog: '${dir}/meta.jsonl', categories: [{ category: mug, title: mug }] } }
  prepare: { uses: images/prepare, with: { instances: '\${{ stages.source.outputs.instances }}' } }
  assemble: { uses: twin/assemble, with: { instances: '\${{ stages.prepare.outputs.instances }}', evalFraction: 0, exports: [rows] } }
`;
    const store = new ArtifactStore(h.home.artifactsDir);
    const preparedOf = async (s: RunStatus) => (await fs.readFile((await store.file(s.stages.prepare!.outputs!.instances as unknown as ArtifactRef)), 'utf8'))
      .trim().split('\n').flatMap((l) => (JSON.parse(l) as { images: Array<{ origin: string; sha256: string }> }).images);
    const first = await run(yaml);
    const before = await preparedOf(first);

    // The same number of bytes, other pixels, and the modification time put back.
    const target = path.join(dir, '1.png');
    const { size, mtime } = await fs.stat(target);
    const edited = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#d03021' } }).png().toBuffer();
    expect(edited.length).toBe(size);
    await fs.writeFile(target, edited);
    await fs.utimes(target, mtime, mtime);

    const second = await run(yaml);
    expect(['source', 'prepare', 'assemble'].map((id) => second.stages[id]!.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const after = await preparedOf(second);
    expect(after.find((i) => i.origin === '1.png')!.sha256).not.toBe(before.find((i) => i.origin === '1.png')!.sha256);
    expect(after.find((i) => i.origin === '0.png')!.sha256).toBe(before.find((i) => i.origin === '0.png')!.sha256);
    const files = (s: RunStatus) => s.stages.assemble!.outputs!.files as unknown as Record<string, ArtifactRef>;
    expect(files(second)['train.jsonl']!.sha256).not.toBe(files(first)['train.jsonl']!.sha256);
    const images = async (s: RunStatus) => (await fs.readdir(path.join(s.stages.assemble!.outputs!.dataset as string, 'images'))).sort();
    expect(await images(second)).not.toEqual(await images(first));
  });
});
