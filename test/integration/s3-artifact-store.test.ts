/**
 * ArtifactStore over a real S3 server (s3proxy, filesystem backend), two "hosts" that share
 * no disk (a local folder each):
 * - what one host puts, the other reads, byte for byte
 * - putting the same content again, from a fresh host, sends no upload
 * - an object damaged in the bucket is refused by its digest (ArtifactCorrupt) and never cached
 * - the server killed mid-upload of a large file: the put fails, nothing is visible after the
 *   restart, and the same put then succeeds
 * - the local cache stays under cacheBytes and evicts the least recently used file first
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import type { ArtifactRef } from '../../engine/types.js';
import { ArtifactStore, blobKey } from '../../activities/artifact-store.js';
import { sha256File } from '../../activities/host-files.js';
import { S3Objects } from '../../activities/store/s3-objects.js';
import { countRequests, randomFile, startS3Server, type S3Server } from '../support/s3-server.js';

const MiB = 2 ** 20;
let server: S3Server;
let tmp: string;
const opened: S3Objects[] = [];
beforeAll(async () => {
  server = await startS3Server({ prefix: 'artifacts' });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-s3-artifacts-'));
});
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});
afterAll(async () => {
  await server?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A host: its own local folder, its own S3 client. */
async function host(name: string, opts: { cacheBytes?: number; partBytes?: number } = {}) {
  const remote = new S3Objects({ url: server.env.TWINFLOW_STORE!, env: server.env, partBytes: opts.partBytes });
  opened.push(remote);
  const local = path.join(tmp, name);
  return { remote, local, store: new ArtifactStore({ local, remote, cacheBytes: opts.cacheBytes, cacheGraceMs: 0 }) };
}

describe('ArtifactStore on S3', () => {
  it('reads on one host the bytes another host put', async () => {
    const a = await host('share-a');
    const b = await host('share-b');
    const file = await randomFile(path.join(tmp, 'shared.bin'), 3 * MiB + 17);
    const ref = await a.store.putFile(file, 'application/octet-stream');
    expect(await b.store.has(ref)).toBe(true);
    const got = await b.store.file(ref);
    expect(got.startsWith(b.local)).toBe(true);
    expect(await sha256File(got)).toBe(ref.sha256);
    expect(String(await b.store.read(await a.store.putBytes('{"small":true}')))).toBe('{"small":true}');
  });

  it('uploads nothing when the content is already in the bucket', async () => {
    const a = await host('again-a');
    const file = await randomFile(path.join(tmp, 'again.bin'), 2 * MiB);
    const ref = await a.store.putFile(file);
    const object = path.join(server.basedir, server.bucket, 'artifacts', blobKey(ref.sha256));
    const before = (await fs.stat(object)).mtimeMs;
    const c = await host('again-c');
    const counts = countRequests(c.remote.client);
    expect(await c.store.putFile(file)).toEqual(ref);
    expect(await a.store.putFile(file)).toEqual(ref);
    expect([...counts.keys()]).toEqual(['HeadObjectCommand']);
    expect((await fs.stat(object)).mtimeMs).toBe(before);
  });

  it('puts a small image with one conditional PUT, which the server refuses when the bytes are there', async () => {
    const a = await host('small-a');
    const file = await randomFile(path.join(tmp, 'small.jpg'), 100 * 1024);
    const ref = await a.store.putFile(file);
    const object = path.join(server.basedir, server.bucket, 'artifacts', blobKey(ref.sha256));
    const before = (await fs.stat(object)).mtimeMs;
    const c = await host('small-c');
    const counts = countRequests(c.remote.client);
    expect(await c.store.putFile(file)).toEqual(ref);
    expect(Object.fromEntries(counts)).toEqual({ PutObjectCommand: 1 });
    expect((await fs.stat(object)).mtimeMs).toBe(before);
  });

  it('refuses an object damaged in the bucket by its digest, and keeps no copy of it', async () => {
    const a = await host('corrupt-a');
    const ref = await a.store.putBytes('the original bytes');
    const object = path.join(server.basedir, server.bucket, 'artifacts', blobKey(ref.sha256));
    await fs.writeFile(object, 'the damaged  bytes');
    const b = await host('corrupt-b');
    const err = await b.store.file(ref).then(() => expect.unreachable('a damaged object was accepted'), (e: unknown) => e as ApplicationFailure);
    expect(err.type).toBe('ArtifactCorrupt');
    expect(err.message).toContain(`Delete the object ${blobKey(ref.sha256)}`);
    expect(await fs.readdir(path.join(b.local, 'sha256', ref.sha256.slice(0, 2))).catch(() => [])).toEqual([]);
  });

  it('fails a put whose server is killed mid-upload, shows nothing after the restart, and then succeeds', async () => {
    const a = await host('killed-a', { partBytes: 5 * MiB });
    const file = await randomFile(path.join(tmp, 'killed.bin'), 40 * MiB);
    let parts = 0;
    a.remote.client.middlewareStack.add((next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === 'UploadPartCommand' && ++parts === 1) await server.kill(); // the other parts are in flight
      return out;
    }, { step: 'initialize', name: 'killAfterFirstPart' });
    const err = await a.store.putFile(file).then(() => expect.unreachable('the put succeeded'), (e: unknown) => e as ApplicationFailure);
    expect(err.type).toBe('ObjectStoreUnreachable');
    expect(err.message).toContain(server.endpoint);
    await server.restart();
    const sha256 = await sha256File(file);
    const b = await host('killed-b');
    expect(await b.remote.exists(blobKey(sha256))).toBe(false);
    const listed: string[] = [];
    for await (const o of b.remote.list('sha256/')) listed.push(o.key);
    expect(listed.filter((k) => k.includes(sha256))).toEqual([]);
    const ref = await a.store.putFile(file);
    expect(await sha256File(await b.store.file(ref))).toBe(sha256);
  });

  it('keeps the local cache under cacheBytes, evicting the least recently used file first', async () => {
    const a = await host('lru-a');
    const refs: ArtifactRef[] = [];
    for (let i = 0; i < 8; i++) refs.push(await a.store.putFile(await randomFile(path.join(tmp, `lru-${i}.bin`), MiB)));
    const bound = 3.5 * MiB;
    const local = path.join(tmp, 'lru-b');
    const b = await host('lru-b', { cacheBytes: bound });
    const cached = (i: number) => path.join(local, blobKey(refs[i]!.sha256));
    for (const i of [0, 1, 2]) await b.store.file(refs[i]!);
    // Minutes pass: 0 was used first, then 1, then 2.
    for (const i of [0, 1, 2]) await fs.utimes(cached(i), new Date(Date.now() - (3 - i) * 60_000), new Date(Date.now() - (3 - i) * 60_000));
    // A second worker on the host (a store of its own over the same folder) uses 0 again, then needs 3.
    const b2 = await host('lru-b', { cacheBytes: bound });
    const mtime0 = (await fs.stat(cached(0))).mtimeMs;
    await b2.store.file(refs[0]!);
    while ((await fs.stat(cached(0))).mtimeMs === mtime0) await new Promise((r) => setTimeout(r, 10));
    await b2.store.file(refs[3]!);
    expect(await present([0, 1, 2, 3], cached)).toEqual([0, 2, 3]);
    for (const i of [4, 5, 6, 7]) {
      await b2.store.file(refs[i]!);
      expect(await localBytes(path.join(local, 'sha256'))).toBeLessThanOrEqual(bound);
    }
    expect(await present([5, 6, 7], cached)).toEqual([5, 6, 7]);
  });
});

async function present(indexes: number[], file: (i: number) => string): Promise<number[]> {
  const out: number[] = [];
  for (const i of indexes) if (await fs.stat(file(i)).then(() => true, () => false)) out.push(i);
  return out;
}

async function localBytes(dir: string): Promise<number> {
  let total = 0;
  for (const shard of await fs.readdir(dir)) {
    for (const name of await fs.readdir(path.join(dir, shard))) total += (await fs.stat(path.join(dir, shard, name))).size;
  }
  return total;
}
