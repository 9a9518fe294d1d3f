/**
 * The store's host-side logic, with a folder standing in for the remote (the same ObjectStore
 * interface S3 implements; test/integration/s3-*.test.ts run it against a real S3 server):
 * two hosts reading one remote, digest checks on download, the LRU bound of a host's cache,
 * folder artifacts (trees) and `pull`, the cache index's first-writer-wins put, shipped logs,
 * host paths checked only where they were written, and TWINFLOW_STORE parsing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ArtifactStore, blobKey } from '../../activities/artifact-store.js';
import { findServable, hostId, recordHostPaths } from '../../activities/cache-check.js';
import { StageCache, type CacheEntry } from '../../activities/cache.js';
import { homeLayout } from '../../activities/home.js';
import { StageLogs } from '../../activities/stage-log.js';
import { openStores } from '../../activities/store/config.js';
import { FolderObjects, type ObjectStore } from '../../activities/store/objects.js';
import { pullTree, putTree, readTree } from '../../activities/store/tree.js';

let root: string;
let n = 0;
const fresh = async (name: string) => fs.mkdtemp(path.join(root, `${name}-${n++}-`));
const sha = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A remote that counts what it is asked to do. */
function counting(objects: ObjectStore): ObjectStore & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
  return {
    calls,
    location: objects.location,
    putFile: (k, f, o) => (count('putFile'), objects.putFile(k, f, o)),
    putBytes: (k, b, o) => (count('putBytes'), objects.putBytes(k, b, o)),
    getFile: (k, f) => (count('getFile'), objects.getFile(k, f)),
    getBytes: (k) => (count('getBytes'), objects.getBytes(k)),
    exists: (k) => (count('exists'), objects.exists(k)),
    list: (p) => objects.list(p),
    delete: (k) => objects.delete(k),
  };
}

beforeEach(async () => {
  root ??= await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-store-'));
});
afterAll(async () => fs.rm(root, { recursive: true, force: true }));

describe('ArtifactStore with a remote', () => {
  it('lets a second host read what the first stored, downloading it once, and uploads a digest only once', async () => {
    const remote = counting(new FolderObjects(await fresh('remote')));
    const a = new ArtifactStore({ local: await fresh('a'), remote });
    const b = new ArtifactStore({ local: await fresh('b'), remote });
    const ref = await a.putBytes('the same bytes');
    await a.putBytes('the same bytes');
    const file = path.join(await fresh('f'), 'x');
    await fs.writeFile(file, 'the same bytes');
    await new ArtifactStore({ local: await fresh('c'), remote }).putFile(file);
    // Each store asks once (a conditional put); the second finds the bytes there.
    expect(remote.calls.putFile).toBe(2);
    expect(await b.has(ref)).toBe(true);
    expect((await b.read(ref)).toString()).toBe('the same bytes');
    expect((await b.read(ref)).toString()).toBe('the same bytes');
    expect(remote.calls.getFile).toBe(1);
  });

  it('refuses a download whose bytes do not match the digest, names the object, and keeps nothing of it', async () => {
    const remoteDir = await fresh('remote');
    const a = new ArtifactStore({ local: await fresh('a'), remote: new FolderObjects(remoteDir) });
    const ref = await a.putBytes('good bytes');
    await fs.writeFile(path.join(remoteDir, ...blobKey(ref.sha256).split('/')), 'bad bytes');
    const bLocal = await fresh('b');
    const b = new ArtifactStore({ local: bLocal, remote: new FolderObjects(remoteDir) });
    await expect(b.file(ref)).rejects.toMatchObject({ type: 'ArtifactCorrupt', nonRetryable: true, message: expect.stringContaining(blobKey(ref.sha256)) });
    expect(await fs.readdir(bLocal, { recursive: true }).then((f) => f.filter((x) => x.includes(ref.sha256)))).toEqual([]);
  });

  it('says where it looked when an artifact is in no store', async () => {
    const remote = new FolderObjects(await fresh('remote'));
    const store = new ArtifactStore({ local: await fresh('a'), remote });
    await expect(store.file(sha('never stored'))).rejects.toMatchObject({ type: 'ArtifactMissing', message: expect.stringContaining(remote.location) });
  });

  it('keeps a host\'s cache under its bound, evicting the least recently used first', async () => {
    const remote = new FolderObjects(await fresh('remote'));
    const writer = new ArtifactStore({ local: await fresh('w'), remote });
    const refs = [];
    for (let i = 0; i < 6; i++) refs.push(await writer.putBytes(Buffer.alloc(1000, i)));
    const local = await fresh('reader');
    const reader = new ArtifactStore({ local, remote, cacheBytes: 3500, cacheGraceMs: 0 });
    const cached = async () => new Set((await fs.readdir(path.join(local, 'sha256'), { recursive: true })).map((f) => path.basename(f)).filter((f) => f.length === 64));
    for (const ref of refs.slice(0, 3)) await reader.file(ref);
    // refs[0] is used again, so refs[1] is now the least recently used.
    const t = Date.now() / 1000;
    await fs.utimes(path.join(local, ...blobKey(refs[1]!.sha256).split('/')), t - 300, t - 300);
    await fs.utimes(path.join(local, ...blobKey(refs[2]!.sha256).split('/')), t - 200, t - 200);
    await fs.utimes(path.join(local, ...blobKey(refs[0]!.sha256).split('/')), t - 100, t - 100);
    await reader.file(refs[3]!);
    const now = await cached();
    expect(now.has(refs[1]!.sha256)).toBe(false);
    expect(now.has(refs[0]!.sha256) && now.has(refs[3]!.sha256)).toBe(true);
    for (const ref of refs) await reader.file(ref);
    const sizes = await Promise.all([...(await cached())].map((d) => fs.stat(path.join(local, 'sha256', d.slice(0, 2), d)).then((s) => s.size)));
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3500);
  });
});

describe('folder artifacts', () => {
  it('gives the same digest for the same files wherever they are, and pulls them back byte for byte', async () => {
    const store = new ArtifactStore(await fresh('store'));
    const make = async () => {
      const dir = await fresh('ds');
      await fs.mkdir(path.join(dir, 'images'));
      await fs.writeFile(path.join(dir, 'train.jsonl'), '{"a":1}\n');
      await fs.writeFile(path.join(dir, 'images', 'x.jpg'), 'jpeg bytes');
      return dir;
    };
    const [one, two] = [await make(), await make()];
    await fs.utimes(path.join(two, 'train.jsonl'), 1, 1);
    const ref = await putTree(store, one);
    expect((await putTree(store, two)).sha256).toBe(ref.sha256);
    expect(ref.counts).toEqual({ files: 2, bytes: 18 });
    const out = path.join(await fresh('pull'), 'dataset');
    await pullTree(store, ref, out);
    expect(await fs.readFile(path.join(out, 'images', 'x.jpg'), 'utf8')).toBe('jpeg bytes');
    expect(await fs.readFile(path.join(out, 'train.jsonl'), 'utf8')).toBe('{"a":1}\n');
    await expect(pullTree(store, ref, out)).rejects.toThrow(/already exists and is not empty/);
  });

  it('refuses a tree that would write outside its folder', async () => {
    const store = new ArtifactStore(await fresh('store'));
    const evil = await store.putBytes(JSON.stringify({ twinflow: 'tree/1', files: [{ path: '../escape', sha256: sha('x'), bytes: 1 }] }));
    await expect(readTree(store, evil)).rejects.toThrow(/unsafe path "..\/escape"/);
    const notTree = await store.putBytes('plain text');
    await expect(readTree(store, notTree)).rejects.toThrow(/not a folder artifact/);
  });
});

describe('the stage cache index and logs with the store', () => {
  const entry = (outputs: CacheEntry['outputs'], extra: Partial<CacheEntry> = {}): CacheEntry => ({
    key: sha('k'), uses: 'core/noop', kindVersion: '1', outputs, createdAt: 't', runId: 'r', stageId: 's', ...extra,
  });

  it('keeps the first entry a key gets (two hosts finishing one stage) unless asked to replace it', async () => {
    const cache = new StageCache(new FolderObjects(await fresh('objects')), 'cache/');
    expect(await cache.putIfAbsent(entry({ n: 1 }))).toBe(true);
    expect(await cache.putIfAbsent(entry({ n: 2 }))).toBe(false);
    expect((await cache.get(sha('k')))!.outputs).toEqual({ n: 1 });
    await cache.put(entry({ n: 3 }));
    expect((await cache.get(sha('k')))!.outputs).toEqual({ n: 3 });
    expect(await cache.clear()).toBe(1);
    expect(await cache.get(sha('k'))).toBeUndefined();
  });

  it('checks host paths only on the host that wrote the entry, artifacts everywhere', async () => {
    const dir = await fresh('out');
    await fs.writeFile(path.join(dir, 'f'), 'x');
    const store = new ArtifactStore(await fresh('store'));
    const cache = new StageCache(await fresh('cache'));
    const ref = await store.putBytes('artifact');
    const here = hostId({ root: '/home/a' });
    await cache.put(entry({ dir, ref: { ...ref } }, { hostPaths: await recordHostPaths({ dir }, () => true), host: here }));
    await fs.rm(path.join(dir, 'f'));
    expect((await findServable(cache, store, sha('k'), here)).stale).toMatch(/changed after the stage wrote it/);
    expect((await findServable(cache, store, sha('k'), hostId({ root: '/home/b' }))).entry).toBeDefined();
    await fs.rm(path.join(store.dir, ...blobKey(ref.sha256).split('/')));
    expect((await findServable(cache, store, sha('k'), hostId({ root: '/home/b' }))).stale).toMatch(/no longer in the artifact store/);
  });

  it('ships a log to the store in chunks as it is written, read back whole from another home', async () => {
    const objects = new FolderObjects(await fresh('objects'));
    const logs = new StageLogs(homeLayout(await fresh('home')), objects);
    const log = await logs.open('run-1', 'train[size=5k]', 'attempt 1');
    log.line('step 1');
    await new Promise((r) => setTimeout(r, 2_300));
    const midway = [];
    for await (const o of objects.list('logs/')) midway.push(o.key);
    expect(midway.length).toBe(1);
    log.line('step 2');
    await log.close();
    const again = await logs.open('run-1', 'train[size=5k]', 'attempt 2');
    again.line('step 1 again');
    await again.close();
    const elsewhere = new StageLogs(homeLayout(await fresh('other')), objects);
    expect(await elsewhere.read('run-1', 'train[size=5k]')).toBe('=== attempt 1\nstep 1\nstep 2\n=== attempt 2\nstep 1 again\n');
    expect(await new StageLogs(homeLayout(await fresh('lone'))).read('run-1', 'train[size=5k]')).toBeUndefined();
  });
});

describe('TWINFLOW_STORE', () => {
  it('is this host\'s folders when unset, a shared folder when a path, and refuses anything else', async () => {
    const home = homeLayout(await fresh('home'));
    expect(openStores(home, {})).toMatchObject({ shared: false, location: home.root, artifacts: { dir: home.artifactsDir } });
    const shared = await fresh('shared');
    expect(openStores(home, { TWINFLOW_STORE: shared })).toMatchObject({ shared: true, location: shared, artifacts: { dir: shared } });
    expect(openStores(home, { TWINFLOW_STORE: `file://${shared}` }).location).toBe(shared);
    expect(() => openStores(home, { TWINFLOW_STORE: 'relative/folder' })).toThrow(/neither s3:\/\/BUCKET\/PREFIX nor an absolute folder/);
    expect(() => openStores(home, { TWINFLOW_STORE: 's3://bucket/p', TWINFLOW_STORE_CACHE_GB: 'lots' })).toThrow(/TWINFLOW_STORE_CACHE_GB=lots/);
    const s3 = openStores(home, { TWINFLOW_STORE: 's3://bucket/pre', AWS_ENDPOINT_URL: 'http://127.0.0.1:1', TWINFLOW_STORE_CACHE_GB: '0.5' });
    expect(s3).toMatchObject({ shared: true, location: 's3://bucket/pre', artifacts: { dir: home.artifactsDir } });
  });
});
