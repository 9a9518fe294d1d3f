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
    await fs.rm(new ArtifactStore(h.home.artifactsDir).resolve(ref));
    const again = await run(yaml);
    expect(again.stages.source!.state).toBe('succeeded');
    expect(staleNotes(again, 'source').join()).toContain(`${ref.uri} is no longer in the artifact store`);
  });
});
