/**
 * S3Objects against a real S3 server (s3proxy with its filesystem backend), no mocks:
 * - put, get, exists, list (paged, the prefix stripped) and delete, under a key prefix
 * - ifAbsent writes once: a second write, or all but one of eight racing writers, get false;
 *   a server that ignores If-None-Match still refuses a key that is there (the HEAD fallback)
 * - a 40 MiB file goes up in 16 MiB parts, is never listed half-written under its key, and comes back byte-identical
 * - a missing bucket, refused credentials and an endpoint nobody answers on are errors that say what to do
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { sha256File } from '../../activities/host-files.js';
import { ObjectMissing } from '../../activities/store/objects.js';
import { S3Objects } from '../../activities/store/s3-objects.js';
import { freePort } from '../../cli/dev-server.js';
import { countRequests, randomFile, startS3Server, type S3Server } from '../support/s3-server.js';

let server: S3Server;
let objects: S3Objects;
let tmp: string;
beforeAll(async () => {
  server = await startS3Server({ prefix: 'team/run' });
  objects = new S3Objects({ url: server.env.TWINFLOW_STORE!, env: server.env });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-s3-objects-'));
});
afterAll(async () => {
  objects?.close();
  await server?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

const failureOf = (p: Promise<unknown>) => p.then(() => expect.unreachable('it should have failed'), (err: unknown) => err as ApplicationFailure);

describe('S3Objects', () => {
  it('puts, reads, lists and deletes objects under the URL prefix', async () => {
    expect(await objects.putBytes('notes/a.txt', 'alpha')).toBe(true);
    await objects.putFile('notes/b.bin', await randomFile(path.join(tmp, 'b.bin'), 1000));
    // The backend keeps objects as files: the prefix is part of the key.
    expect(await fs.readFile(path.join(server.basedir, server.bucket, 'team/run/notes/a.txt'), 'utf8')).toBe('alpha');
    expect(await objects.exists('notes/a.txt')).toBe(true);
    expect(await objects.exists('notes/zzz')).toBe(false);
    expect(String(await objects.getBytes('notes/a.txt'))).toBe('alpha');
    expect(await objects.getBytes('notes/zzz')).toBeUndefined();
    await objects.getFile('notes/b.bin', path.join(tmp, 'b.copy'));
    expect(await sha256File(path.join(tmp, 'b.copy'))).toBe(await sha256File(path.join(tmp, 'b.bin')));
    await expect(objects.getFile('notes/zzz', path.join(tmp, 'zzz'))).rejects.toBeInstanceOf(ObjectMissing);
    expect(await collect(objects.list('notes/'))).toEqual([{ key: 'notes/a.txt', size: 5 }, { key: 'notes/b.bin', size: 1000 }]);
    await objects.delete('notes/a.txt');
    await objects.delete('notes/never-there');
    expect(await objects.exists('notes/a.txt')).toBe(false);
    expect((await collect(objects.list('notes/'))).map((o) => o.key)).toEqual(['notes/b.bin']);
  });

  it('lists past the first page of 1,000 keys, in key order', async () => {
    const keys = Array.from({ length: 1001 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => objects.putBytes(k, 'x')));
    const counts = countRequests(objects.client);
    expect((await collect(objects.list('many/'))).map((o) => o.key)).toEqual(keys);
    expect(counts.get('ListObjectsV2Command')).toBe(2);
  });

  it('writes an ifAbsent object once, and exactly one of eight racing writers wins', async () => {
    expect(await objects.putBytes('once/a', 'first', { ifAbsent: true })).toBe(true);
    expect(await objects.putBytes('once/a', 'second', { ifAbsent: true })).toBe(false);
    expect(String(await objects.getBytes('once/a'))).toBe('first');
    const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => objects.putBytes('once/race', `writer ${i}`, { ifAbsent: true })));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(String(await objects.getBytes('once/race'))).toBe(`writer ${wins.indexOf(true)}`);
  });

  it('still refuses an existing key when the server ignores If-None-Match', async () => {
    const ignoring = new S3Objects({ url: server.env.TWINFLOW_STORE!, env: server.env });
    ignoring.client.middlewareStack.add((next) => async (args) => {
      delete (args.request as { headers: Record<string, string> }).headers['if-none-match'];
      return next(args);
    }, { step: 'build', name: 'dropIfNoneMatch' });
    try {
      expect(await ignoring.putBytes('ignored/a', 'first', { ifAbsent: true })).toBe(true);
      expect(await ignoring.putBytes('ignored/a', 'second', { ifAbsent: true })).toBe(false);
      expect(String(await objects.getBytes('ignored/a'))).toBe('first');
    } finally {
      ignoring.close();
    }
  });

  it('uploads a 40 MiB file in 16 MiB parts that no listing shows before it is whole, and downloads it byte-identical', async () => {
    const size = 40 * 2 ** 20 + 123;
    const file = await randomFile(path.join(tmp, 'big.bin'), size);
    const counts = countRequests(objects.client);
    let done = false;
    const upload = objects.putFile('big/one.bin', file).finally(() => (done = true));
    const seen: number[] = [];
    while (!done) {
      for (const o of await collect(objects.list('big/'))) if (o.key === 'big/one.bin') seen.push(o.size);
      await new Promise((r) => setTimeout(r, 20));
    }
    await upload;
    // s3proxy's filesystem backend writes KEY-UUID beside the key and renames it into place; that
    // temporary name shows in listings (S3 and MinIO have none), but the key is only ever there whole.
    expect(seen.filter((s) => s !== size)).toEqual([]);
    expect(counts.get('CreateMultipartUploadCommand')).toBe(1);
    expect(counts.get('UploadPartCommand')).toBe(3);
    await objects.getFile('big/one.bin', path.join(tmp, 'big.copy'));
    expect(await sha256File(path.join(tmp, 'big.copy'))).toBe(await sha256File(file));
  });
});

describe('S3Objects errors a person reads', () => {
  it('says to create a missing bucket', async () => {
    const missing = new S3Objects({ url: 's3://no-such-bucket/x', env: server.env });
    for (const attempt of [() => missing.exists('k'), () => missing.putBytes('k', 'v'), () => missing.getBytes('k')]) {
      const err = await failureOf(attempt());
      expect(err.type).toBe('ObjectStoreBucketMissing');
      expect(err.nonRetryable).toBe(true);
      expect(err.message).toContain(`the bucket no-such-bucket does not exist at ${server.endpoint}`);
      expect(err.message).toContain('aws s3 mb s3://no-such-bucket');
      expect(err.message).toContain('check TWINFLOW_STORE');
    }
    missing.close();
  });

  it('names the credentials the server refused', async () => {
    const wrong = new S3Objects({ url: server.env.TWINFLOW_STORE!, env: { ...server.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' } });
    for (const attempt of [() => wrong.exists('k'), () => wrong.putBytes('k', 'v')]) {
      const err = await failureOf(attempt());
      expect(err.type).toBe('ObjectStoreCredentialsRefused');
      expect(err.message).toContain('AWS_ACCESS_KEY_ID=twinflow-test and AWS_SECRET_ACCESS_KEY');
    }
    wrong.close();
  });

  it('names the endpoint nobody answers on, and may be retried', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const away = new S3Objects({ url: 's3://twinflow-test', env: { ...server.env, AWS_ENDPOINT_URL: endpoint } });
    const err = await failureOf(away.putBytes('k', 'v'));
    expect(err.type).toBe('ObjectStoreUnreachable');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toContain(`cannot reach the object store at ${endpoint} (ECONNREFUSED`);
    expect(err.message).toContain('AWS_ENDPOINT_URL');
    away.close();
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
