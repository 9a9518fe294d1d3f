/**
 * images/prepare and the source files it reads:
 * - an image edited after twin/source hashed it is quarantined (never prepared from new bytes
 *   under the old digest); one that still matches is prepared and keeps its source digest;
 * - a file over maxFileMB is quarantined unread.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { MemoryBudget, MiB } from '../../activities/images/memory-budget.js';
import { createPrepareImages, type QuarantineRow } from '../../activities/images/prepare.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { seededRandom } from '../../activities/twin/pairs.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { jsonlRows } from '../support/activity-results.js';

interface Outputs {
  instances: ArtifactRef;
  quarantine: ArtifactRef;
  counts: { prepared: number; quarantined: number };
}

let home: HomeLayout;
let store: ArtifactStore;
let dir: string;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const swatch = (r: number, width = 160, height = 120) => sharp({ create: { width, height, channels: 3, background: { r, g: 120, b: 40 } } }).jpeg().toBuffer();

/** Seeded noise does not compress, so this PNG is about as large on disk as its pixels. */
function noisyPng(width: number, height: number): Promise<Buffer> {
  const random = seededRandom(5);
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(random() * 256);
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function run(rows: Array<{ id: string; images: ManifestImage[] }>, extra: JsonObject = {}) {
  const manifest = await store.putBytes(
    rows.map((r): ManifestRow => ({ instance_id: r.id, asins: [r.id], title: r.id, category: 'Mugs', images: r.images })).map((r) => JSON.stringify(r)).join('\n') + '\n',
    MANIFEST_MEDIA_TYPE,
  );
  const i: StageActivityInput = { runId: 'r1', stageId: 'prepare', uses: 'images/prepare', kindVersion: '2', with: { instances: { ...manifest }, ...extra }, shellEnv: {} };
  const prepare = createPrepareImages({ store, home, budget: new MemoryBudget(1024 * MiB) });
  const outputs = ((await new MockActivityEnvironment({ attempt: 1 }).run(prepare, i)) as StageActivityResult).outputs as unknown as Outputs;
  const kept = await jsonlRows<ManifestRow>(store, outputs.instances);
  const report = await jsonlRows<QuarantineRow>(store, outputs.quarantine);
  return { outputs, kept, report };
}

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-prepare-source-')));
  store = new ArtifactStore(home.artifactsDir);
  dir = path.join(home.root, 'images');
  await fs.mkdir(dir);
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

describe('images/prepare source files', () => {
  it('quarantines an image edited since twin/source hashed it, and prepares one that still matches', async () => {
    const listed = await swatch(200);
    const edited = path.join(dir, 'edited.jpg');
    const kept = path.join(dir, 'kept.jpg');
    await fs.writeFile(edited, await swatch(10)); // edited in place after twin/source read `listed`
    await fs.writeFile(kept, listed);
    const { outputs, kept: rows, report } = await run([
      { id: 'edited', images: [{ path: edited, role: 'listing', source_sha256: sha256(listed) }] },
      { id: 'kept', images: [{ path: kept, role: 'listing', source_sha256: sha256(listed) }] },
    ]);
    const reason = report.find((q) => q.path === edited)?.reason;
    expect(reason).toBe(
      `changed since twin/source read it (sha256 ${sha256(await fs.readFile(edited)).slice(0, 12)}..., ` +
      `the manifest has ${sha256(listed).slice(0, 12)}...): run the pipeline again`,
    );
    expect(outputs.counts).toMatchObject({ prepared: 1, quarantined: 1 });
    expect(rows.map((r) => r.instance_id)).toEqual(['kept']);
    expect(rows[0]!.images[0]).toMatchObject({ source_sha256: sha256(listed), width: 160, height: 120 });
  });

  it('prepares images whose manifest carries no source digest as before', async () => {
    const plain = path.join(dir, 'plain.jpg');
    await fs.writeFile(plain, await swatch(90));
    const { outputs } = await run([{ id: 'plain', images: [{ path: plain, role: 'listing' }] }]);
    expect(outputs.counts).toMatchObject({ prepared: 1, quarantined: 0 });
  });

  it('quarantines a file larger than maxFileMB without reading it, and keeps the small ones', async () => {
    const big = path.join(dir, 'big.png');
    const small = path.join(dir, 'small.jpg');
    await fs.writeFile(big, await noisyPng(1000, 600));
    await fs.writeFile(small, await swatch(30));
    const { size } = await fs.stat(big);
    expect(size).toBeGreaterThan(MiB);
    const { outputs, report } = await run([{ id: 'x', images: [{ path: big, role: 'listing' }, { path: small, role: 'listing' }] }], { maxFileMB: 1 });
    expect(report.find((q) => q.path === big)?.reason).toBe(`file too large: ${(size / MiB).toFixed(1)} MB exceeds maxFileMB 1`);
    expect(outputs.counts).toMatchObject({ prepared: 1, quarantined: 1 });
  });
});
