/**
 * Two worker hosts that share nothing but Temporal and an S3 store (s3proxy), on one machine:
 * - the demo pipeline with embed/images on `queue: gpu` runs to the end; the GPU host has its
 *   own TWINFLOW_HOME and runs in its own mount namespace, with a tmpfs over the CPU host's
 *   home and over the source data, so it provably reads nothing but the store;
 * - the dataset `twinflow pull` writes from a third home has the bytes of the same pipeline
 *   run on one host with the local folder store;
 * - a second run is served from the cache even with the workflow host replaced by a fresh
 *   one (the cache index lives with the store), and `twinflow logs` works from a third home;
 * - an image corrupted in the bucket is refused by its digest on a host that must download it,
 *   and the stage says so;
 * - the store killed while images/prepare uploads: the attempt fails, the stage's retry
 *   succeeds once the store is back, and no object in the bucket is partial.
 */
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobKey } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { RunStatus } from '../../workflows/messages.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { runTwinflow } from '../support/twinflow-cli.js';
import { exited, spawnWorker } from '../support/worker-process.js';
import { startHarness, summary, type Harness } from './harness.js';

const repo = path.resolve(import.meta.dirname, '../..');
const DATA = path.join(repo, 'data/demo');

let h: Harness;
let s3: S3Server;
let root: string;
let yaml: string;
const cleanups: Array<() => Promise<unknown>> = [];
const homes: Record<string, string> = {};
let local: RunStatus;
let first: RunStatus;

/** The demo with embed/images on the gpu queue, plus a gpu stage that reports what the GPU host can see. */
function twoHostPipeline(demo: string, cpuHome: string): string {
  const withGpuEmbed = demo.replace(/(\n  embed:\n    uses: embed\/images\n)/, '$1    queue: gpu\n');
  if (withGpuEmbed === demo) throw new Error('pipelines/demo.yaml no longer has the embed stage this test moves to the gpu queue');
  const probe = [
    '  probe:',
    '    uses: core/shell',
    '    queue: gpu',
    '    with:',
    `      run: 'echo "probing on $(hostname)"; n=$(ls -A ${DATA} ${cpuHome} 2>/dev/null | grep -v ":$" | grep -c . || true); echo "{\\"visible\\": $n}"'`,
  ].join('\n');
  return `${withGpuEmbed.trimEnd()}\n\n${probe}\n`;
}

async function mkHome(name: string): Promise<string> {
  homes[name] = path.join(root, name);
  await fs.mkdir(homes[name]!, { recursive: true });
  return homes[name]!;
}

/** Worker processes by host name; each is one "host" with its own TWINFLOW_HOME. */
const hosts = new Map<string, ChildProcess>();

async function startHost(name: string, queue: string, opts: Parameters<typeof spawnWorker>[3] = {}): Promise<void> {
  hosts.set(name, await spawnWorker({ address: h.address, home: homes[name]! }, queue, cleanups, opts));
}

async function stopHost(name: string): Promise<void> {
  const child = hosts.get(name)!;
  hosts.delete(name);
  child.kill('SIGTERM');
  await exited(child);
}

/** sha256 of every file under a folder, by relative path. */
async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, rel);
    if ((await fs.lstat(file)).isFile()) out[rel] = createHash('sha256').update(await fs.readFile(file)).digest('hex');
  }
  return out;
}

const states = (run: RunStatus) => Object.fromEntries(Object.entries(run.stages).map(([id, s]) => [id, s.state]));

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-hosts-'));
  [h, s3] = await Promise.all([startHarness({ workers: false }), startS3Server({ prefix: 'runs' })]);
  for (const name of ['local', 'cpu', 'gpu', 'cpu2', 'third', 'gpu2']) await mkHome(name);
  yaml = twoHostPipeline(await fs.readFile(path.join(repo, 'pipelines/demo.yaml'), 'utf8'), homes.cpu!);
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await h?.stop();
  await s3?.stop();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('hosts that share only Temporal and an S3 store', () => {
  it('runs the demo on one host with the local store (the reference bytes)', async () => {
    await startHost('local', 'cpu gpu', { workflows: true });
    try {
      local = await h.result(await h.submit(yaml));
      expect(local.state, JSON.stringify(summary(local))).toBe('succeeded');
      expect(local.stages.probe!.outputs!.visible).toBeGreaterThan(0);
    } finally {
      await stopHost('local');
    }
  }, 300_000);

  it('runs embed/images on a GPU host that sees neither the CPU host\'s home nor the source data', async () => {
    await startHost('cpu', 'cpu', { workflows: true, env: s3.env });
    await startHost('gpu', 'gpu', { env: s3.env, hide: [homes.cpu!, DATA] });
    first = await h.result(await h.submit(yaml));
    expect(first.state, JSON.stringify(summary(first))).toBe('succeeded');
    expect(first.stages.probe!.outputs).toEqual({ visible: 0 });
    expect(first.stages.embed!.state).toBe('succeeded');
    // The GPU host read the prepared images from the bucket into its own bounded cache.
    const gpuCache = await fs.readdir(path.join(homes.gpu!, 'artifacts', 'sha256'), { recursive: true });
    expect(gpuCache.length).toBeGreaterThan(10);
    // Same embeddings as on one host: the stage's inputs and outputs name content only.
    expect(first.stages.embed!.outputs!.embeddings).toEqual(local.stages.embed!.outputs!.embeddings);
  }, 300_000);

  it('pulls the dataset from a third home with the bytes of the one-host run', async () => {
    const out = path.join(root, 'pulled');
    const pulled = await runTwinflow({ address: h.address, home: homes.third!, env: s3.env }, 'pull', `${first.runId}/assemble/datasetTree`, out);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/pulled \d+ files/);
    const reference = await digests(local.stages.assemble!.outputs!.dataset as string);
    expect(Object.keys(reference).length).toBeGreaterThan(5);
    expect(await digests(out)).toEqual(reference);
    const tree = first.stages.assemble!.outputs!.datasetTree as unknown as ArtifactRef;
    expect(tree).toEqual(local.stages.assemble!.outputs!.datasetTree);
  }, 120_000);

  it('serves a second run from the cache with a fresh workflow host, and shows a GPU stage\'s log from a third home', async () => {
    // Only a fresh host, with an empty home, runs workflows and cpu stages now.
    await stopHost('cpu');
    await startHost('cpu2', 'cpu', { workflows: true, env: s3.env });
    const again = await h.result(await h.submit(yaml));
    expect(again.state).toBe('succeeded');
    const notCached = Object.entries(states(again)).filter(([, s]) => s !== 'cached');
    // core/shell runs every time unless it asks for `cache: true`; every other stage is a hit.
    expect(notCached).toEqual([['probe', 'succeeded']]);
    expect(again.stages.embed!.cachedFrom).toEqual({ runId: first.runId, stageId: 'embed' });
    const logs = await runTwinflow({ address: h.address, home: homes.third!, env: s3.env }, 'logs', first.runId, 'probe');
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/=== attempt 1 at .* on pid \d+/);
    expect(logs.stdout).toMatch(/probing on /);
    expect(logs.stdout).toContain('{"visible": 0}');
  }, 300_000);

  it('refuses an image corrupted in the bucket by its digest, naming the object', async () => {
    const prepared = (await fs.readFile(await localFile(homes.cpu!, first.stages.prepare!.outputs!.instances as unknown as ArtifactRef), 'utf8'))
      .split('\n').filter(Boolean).map((l) => JSON.parse(l) as { images: Array<{ sha256: string }> });
    const victim = prepared[0]!.images[0]!.sha256;
    const object = path.join(s3.basedir, s3.bucket, 'runs', ...blobKey(victim).split('/'));
    await fs.writeFile(object, 'not the image any more');
    // A fresh GPU host, with nothing cached, is the only one serving gpu; embed must run, not come from the cache.
    await stopHost('gpu');
    await startHost('gpu2', 'gpu', { env: s3.env, hide: [homes.cpu!, homes.gpu!, DATA] });
    const uncached = yaml.replace(/(\n  embed:\n    uses: embed\/images\n    queue: gpu\n)/, '$1    cache: false\n');
    const runId = await h.submit(uncached);
    const failed = await h.waitFor(runId, 'embed to fail', (s) => s.stages.embed?.state === 'failed', 180_000);
    const error = failed.stages.embed!.error!;
    expect(error.type ?? error.message).toMatch(/ArtifactCorrupt|damaged/);
    expect(error.message).toContain(`sha256/${victim.slice(0, 2)}/${victim}`);
    await h.env.client.workflow.getHandle(runId).cancel();
    await stopHost('gpu2');
    await stopHost('cpu2');
  }, 300_000);

  it('retries a stage whose store went down mid-upload, and leaves no partial object behind', async () => {
    const store = `${s3.env.TWINFLOW_STORE}-outage`;
    await startHost('cpu3', 'cpu', { workflows: true, env: { ...s3.env, TWINFLOW_STORE: store } });
    // One image at a time, so the outage lands between uploads of one attempt.
    const twoStages = [
      'name: store-outage',
      'stages:',
      '  source:',
      '    uses: twin/source',
      `    with: { catalog: ${DATA}/meta_demo.jsonl, reviews: ${DATA}/reviews_demo.jsonl, categories: ${DATA}/categories.yaml }`,
      '  prepare:',
      '    uses: images/prepare',
      '    retry: { attempts: 5, backoff: 2s }',
      '    with: { concurrency: 1, instances: "${{ stages.source.outputs.instances }}" }',
    ].join('\n');
    const runId = await h.submit(twoStages);
    await h.waitFor(runId, 'prepare to start', (s) => s.stages.prepare?.state === 'running', 60_000);
    await new Promise((r) => setTimeout(r, 300));
    await s3.kill();
    await new Promise((r) => setTimeout(r, 3_000));
    await s3.restart();
    const done = await h.result(runId);
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    expect(done.stages.prepare!.attempts).toBeGreaterThan(1);
    const objects = path.join(s3.basedir, s3.bucket, 'runs-outage', 'sha256');
    const files = (await fs.readdir(objects, { recursive: true })).filter((f) => path.basename(f).length === 64);
    expect(files.length).toBeGreaterThan(20);
    for (const f of files) expect(sha256(await fs.readFile(path.join(objects, f))), f).toBe(path.basename(f));
    await stopHost('cpu3');
  }, 300_000);
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The local file of an artifact in a host's own cache folder. */
function localFile(home: string, ref: ArtifactRef): string {
  return path.join(home, 'artifacts', ...blobKey(ref.sha256).split('/'));
}
