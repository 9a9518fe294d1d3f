/**
 * images/prepare and the worker's decode-memory budget:
 * - a long strip that needs more than memoryMB is quarantined with what it needs, the rest prepared;
 * - at concurrency 4, four long strips under a budget that holds two never decode more than two at once,
 *   and give the same bytes as with room for all four;
 * - two stages on one worker draw on one budget, the process's own when none is given;
 * - memoryMB larger than the worker's budget fails the stage at once, naming the setting;
 * - a stage cancelled while its images wait for memory fails as cancelled and leaves the budget free.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { MemoryBudget, MiB, processImageMemory } from '../../activities/images/memory-budget.js';
import { createPrepareImages, type QuarantineRow } from '../../activities/images/prepare.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { DEFAULT_MEMORY_MB } from '../../engine/kinds/images.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';

interface Outputs {
  instances: ArtifactRef;
  quarantine: ArtifactRef;
  counts: { prepared: number; quarantined: number; largestReservationMB: number };
}

let home: HomeLayout;
let store: ArtifactStore;
let dir: string;

/** A 400,000 x 4 grey PNG: tiny on disk, but libvips holds ~125 full-width rows to shrink it to one. */
const strip = (shade: number) => sharp(Buffer.alloc(400_000 * 4, shade), { raw: { width: 400_000, height: 4, channels: 1 } }).toColourspace('b-w').png().toBuffer();
const photo = (shade: number) => sharp({ create: { width: 120, height: 90, channels: 3, background: { r: shade, g: 90, b: 30 } } }).jpeg().toBuffer();

async function file(name: string, bytes: Promise<Buffer>): Promise<string> {
  const at = path.join(dir, name);
  await fs.writeFile(at, await bytes);
  return at;
}

async function manifestOf(rows: Array<[id: string, files: string[]]>): Promise<ArtifactRef> {
  const lines = rows.map(([id, files]): ManifestRow => ({ instance_id: id, asins: [id], title: id, category: 'Mugs', images: files.map((p) => ({ path: p, role: 'listing' })) }));
  return store.putBytes(lines.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
}

function input(instances: ArtifactRef, extra: JsonObject, stageId = 'prepare'): StageActivityInput {
  return { runId: 'r1', stageId, uses: 'images/prepare', kindVersion: '2', with: { instances: { ...instances }, ...extra }, shellEnv: {} };
}

async function run(budget: MemoryBudget | undefined, i: StageActivityInput, env = new MockActivityEnvironment({ attempt: 1 })) {
  const prepare = createPrepareImages({ store, home, ...(budget ? { budget } : {}) });
  return ((await env.run(prepare, i)) as StageActivityResult).outputs as unknown as Outputs;
}

let strips: ArtifactRef;

beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-prepare-memory-')));
  store = new ArtifactStore(home.artifactsDir);
  dir = path.join(home.root, 'images');
  await fs.mkdir(dir);
  const files = await Promise.all([1, 2, 3, 4].map((i) => file(`strip-${i}.png`, strip(40 * i))));
  strips = await manifestOf(files.map((f, i) => [`strip-${i}`, [f]]));
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

describe('images/prepare memory budget', () => {
  it('quarantines a long strip that needs more than memoryMB, saying what it needs and how to raise it, and prepares the rest', async () => {
    const long = await file('long.png', strip(7));
    const manifest = await manifestOf([['long', [long, await file('a.jpg', photo(10))]], ['photo', [await file('b.jpg', photo(200))]]]);
    const outputs = await run(new MemoryBudget(1024 * MiB), input(manifest, { memoryMB: 32 }));
    const report = await jsonlRows<QuarantineRow>(store, outputs.quarantine);
    expect(report).toHaveLength(1);
    expect(report[0]!.path).toBe(long);
    expect(report[0]!.reason).toMatch(
      /^needs about \d+ MB to decode \(400000 x 4, 1 channel, 8-bit png\), more than memoryMB 32: raise memoryMB \(and the worker's TWINFLOW_IMAGE_MEMORY_MB\) to prepare it$/,
    );
    expect(Number(/about (\d+) MB/.exec(report[0]!.reason)![1])).toBeGreaterThan(32);
    expect(outputs.counts).toMatchObject({ prepared: 2, quarantined: 1 });
    expect(outputs.counts.largestReservationMB).toBeGreaterThan(0);
    expect(outputs.counts.largestReservationMB).toBeLessThanOrEqual(32);
  });

  it('decodes at most as many long strips at once as the budget holds, at concurrency 4, with the same output', async () => {
    const roomy = new MemoryBudget(1024 * MiB);
    const first = await run(roomy, input(strips, { concurrency: 4 }, 'roomy'));
    const each = first.counts.largestReservationMB;
    const twoMB = Math.floor(each * 2.5); // room for two reservations, not three
    const tight = new MemoryBudget(twoMB * MiB);
    const second = await run(tight, input(strips, { concurrency: 4, memoryMB: twoMB }, 'tight'));
    expect(second.counts.prepared).toBe(4);
    expect(tight.peakHolders).toBeGreaterThanOrEqual(1);
    expect(tight.peakHolders).toBeLessThanOrEqual(2);
    expect(tight.peakBytes).toBeLessThanOrEqual(tight.capacity);
    expect(tight.usedBytes).toBe(0);
    expect(second.instances.sha256).toBe(first.instances.sha256);
  });

  it('has two stages on one worker share one budget', async () => {
    const probe = await run(new MemoryBudget(1024 * MiB), input(strips, { concurrency: 1 }, 'probe'));
    const twoMB = Math.floor(probe.counts.largestReservationMB * 2.5);
    const shared = new MemoryBudget(twoMB * MiB);
    const [a, b] = await Promise.all(['stage-a', 'stage-b'].map((id) => run(shared, input(strips, { concurrency: 4, memoryMB: twoMB }, id))));
    expect([a!.counts.prepared, b!.counts.prepared]).toEqual([4, 4]);
    expect(shared.peakHolders).toBeLessThanOrEqual(2);
    expect(shared.peakBytes).toBeLessThanOrEqual(shared.capacity);
  });

  it('draws on the worker process budget when none is given', async () => {
    await run(undefined, input(strips, { concurrency: 2 }, 'default-budget'));
    expect(processImageMemory(DEFAULT_MEMORY_MB).peakBytes).toBeGreaterThan(0);
  });

  it("fails at once, without retrying, when memoryMB is more than the worker's budget, naming the setting", async () => {
    const err = await failure(run(new MemoryBudget(64 * MiB), input(strips, { memoryMB: 128 }, 'too-big')));
    expect(err).toMatchObject({ type: 'InvalidWorkerSetting', nonRetryable: true });
    expect(err.message).toContain("with.memoryMB 128 is more than this worker's image memory (64 MB, TWINFLOW_IMAGE_MEMORY_MB)");
    expect(err.message).toContain('TWINFLOW_IMAGE_MEMORY_MB=128');
  });

  it('fails as cancelled when cancelled while its images wait for memory, and leaves nothing reserved', async () => {
    const budget = new MemoryBudget(256 * MiB);
    let release!: () => void;
    const hog = budget.use(budget.capacity, () => new Promise<void>((resolve) => (release = resolve)));
    const env = new MockActivityEnvironment({ attempt: 1 });
    const stage = failure(run(budget, input(strips, { concurrency: 2, memoryMB: 256 }, 'cancelled'), env));
    await vi.waitFor(() => expect(budget.waiting).toBe(2), { timeout: 20_000 });
    env.cancel();
    expect(await stage).toBeInstanceOf(CancelledFailure);
    expect(budget.waiting).toBe(0);
    release();
    await hog;
    expect(budget.usedBytes).toBe(0);
  });
});
