import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { checkKey, FolderObjects, ObjectMissing, type ObjectStore, type PutOptions } from './objects.js';
import { parseS3Url, s3Settings } from './s3-config.js';
import { codeOf, explainS3Error, statusOf, type S3Context } from './s3-errors.js';

export interface S3ObjectsOptions {
  /** `s3://BUCKET` or `s3://BUCKET/PREFIX`. */
  url: string;
  /** Where the AWS_* settings are read from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * Size of each part of a multipart upload; files up to this size go up in one PUT. 16 MiB parts
   * moved a large file a third faster than 8 MiB ones (s3proxy, bench/store.ts). @default 16 MiB
   */
  partBytes?: number;
  /** Parts of one upload in flight at once (memory held: partBytes x queueSize). @default 4 */
  queueSize?: number;
}

/**
 * Objects in S3-compatible storage (AWS S3, MinIO, Ceph, R2, GCS's S3 interface, s3proxy),
 * configured the AWS way (see s3-config.ts). Atomicity is the server's: a PUT and a
 * CompleteMultipartUpload make an object visible whole or not at all. A multipart upload
 * that fails is aborted; one whose abort fails too (the server went away) leaves parts that
 * no listing shows: a bucket lifecycle rule (AbortIncompleteMultipartUpload) reclaims them.
 */
/** Files up to this size are put conditionally without asking first (see putFile). */
const CONDITIONAL_PUT_BYTES = 256 * 1024;

export class S3Objects implements ObjectStore {
  /** The SDK client, for callers that add middleware (tests count requests with it). */
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly location: string;
  readonly endpoint?: string;
  private readonly credentialsFrom: string;
  private readonly partBytes: number;
  private readonly queueSize: number;
  private bucketChecked = false;

  constructor(opts: S3ObjectsOptions) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(opts.url));
    this.location = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    const settings = s3Settings(opts.env ?? process.env);
    this.endpoint = settings.endpoint;
    this.credentialsFrom = settings.credentialsFrom;
    this.client = new S3Client(settings.config);
    unsignedUploads(this.client);
    this.partBytes = opts.partBytes ?? 16 * 2 ** 20;
    this.queueSize = opts.queueSize ?? 4;
  }

  private keyOf(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.keyOf(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return true;
    } catch (err) {
      // A HEAD has no body: a missing bucket is a 404 like a missing key, so ask once which.
      if (statusOf(err) === 404) return this.checkBucket(key).then(() => false);
      throw this.explain(err, `checking ${key}`);
    }
  }

  /**
   * With `ifAbsent`, a small file (up to CONDITIONAL_PUT_BYTES, a prepared image) goes up as
   * one PUT with If-None-Match: * (412: it was there, nothing is written), with no HEAD first:
   * the HEAD was a quarter of the time for 10,000 new images, and re-sending 256 KiB costs
   * about what a round trip does. A larger file is HEADed first: its bytes go only where they
   * are missing. A server that ignores the header rewrites the object with the same bytes,
   * harmless for content-addressed keys, the only ones that ask.
   */
  async putFile(key: string, file: string, opts: PutOptions & { ifAbsent?: boolean } = {}): Promise<boolean> {
    const { size } = await fs.stat(file);
    // A file within one part is read whole and sent in one PUT: lib-storage would do the same
    // after a chunker and an extra stream, which costs a third more CPU per small image.
    const conditional = opts.ifAbsent === true && size <= CONDITIONAL_PUT_BYTES;
    if (opts.ifAbsent && !conditional && (await this.exists(key))) return false;
    if (size <= this.partBytes) {
      const Body = await fs.readFile(file);
      return this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: this.keyOf(key), Body, ContentLength: Body.byteLength, ContentType: opts.contentType,
        ...(conditional ? { IfNoneMatch: '*' } : {}),
      }), { abortSignal: opts.signal }).then(() => true, (err: unknown) => {
        if (opts.ifAbsent && (codeOf(err) === 'PreconditionFailed' || statusOf(err) === 412)) return false;
        throw this.explain(err, `uploading ${file} to ${key}`);
      });
    }
    const body = createReadStream(file);
    // lib-storage streams the file in parts (at most queueSize parts in memory) and aborts the
    // multipart upload when a part fails.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.keyOf(key), Body: body, ContentType: opts.contentType },
      partSize: this.partBytes,
      queueSize: this.queueSize,
    });
    const abort = () => void upload.abort();
    opts.signal?.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
      return true;
    } catch (err) {
      throw this.explain(err, `uploading ${file} to ${key}`);
    } finally {
      opts.signal?.removeEventListener('abort', abort);
      body.destroy();
    }
  }

  /**
   * With `ifAbsent`: a HEAD first (most calls find the object and upload nothing), then a PUT
   * with If-None-Match: *, which the server refuses with 412 when another writer got there in
   * between. A server that ignores the header (or answers 501, then it is left out) is down to
   * the HEAD alone, which has a race window: two writers that both see no object both write.
   */
  async putBytes(key: string, bytes: Uint8Array | string, opts: PutOptions & { ifAbsent?: boolean } = {}): Promise<boolean> {
    if (opts.ifAbsent && (await this.exists(key))) return false;
    const put = (ifNoneMatch: boolean) => this.client.send(new PutObjectCommand({
      Bucket: this.bucket, Key: this.keyOf(key), Body: bytes, ContentType: opts.contentType, ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    }), { abortSignal: opts.signal });
    try {
      await put(opts.ifAbsent === true).catch((err: unknown) => {
        if (!opts.ifAbsent || !(codeOf(err) === 'NotImplemented' || statusOf(err) === 501)) throw err;
        return put(false);
      });
      return true;
    } catch (err) {
      if (opts.ifAbsent && (codeOf(err) === 'PreconditionFailed' || statusOf(err) === 412)) return false;
      throw this.explain(err, `writing ${key}`);
    }
  }

  async getFile(key: string, file: string, opts: { signal?: AbortSignal } = {}): Promise<{ sha256: string; bytes: number }> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }), { abortSignal: opts.signal });
      // Hashed on the way to disk: the caller checks the digest without reading the file again.
      const hash = createHash('sha256');
      let bytes = 0;
      const tap = async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      };
      await pipeline(res.Body as Readable, tap, createWriteStream(file), { signal: opts.signal });
      return { sha256: hash.digest('hex'), bytes };
    } catch (err) {
      if (codeOf(err) === 'NoSuchKey') throw new ObjectMissing(this.location, key);
      throw this.explain(err, `downloading ${key}`);
    }
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (codeOf(err) === 'NoSuchKey') return undefined;
      throw this.explain(err, `reading ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({
        Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/${prefix}` : prefix, ContinuationToken,
      })).catch((err: unknown) => {
        throw this.explain(err, `listing ${prefix || 'every key'}`);
      });
      for (const o of page.Contents ?? []) yield { key: o.Key!.slice(strip), size: o.Size ?? 0 };
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) })).catch((err: unknown) => {
      if (codeOf(err) === 'NoSuchKey') return;
      throw this.explain(err, `deleting ${key}`);
    });
  }

  close(): void {
    this.client.destroy();
  }

  /** Tells a missing bucket from a missing key after a HEAD's 404 (once: buckets rarely go). */
  private async checkBucket(key: string): Promise<void> {
    if (this.bucketChecked) return;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketChecked = true;
    } catch (err) {
      throw this.explain(statusOf(err) === 404 ? Object.assign(err as Error, { Code: 'NoSuchBucket' }) : err, `checking ${key}`);
    }
  }

  private explain(err: unknown, doing: string): unknown {
    const ctx: S3Context = { location: this.location, bucket: this.bucket, endpoint: this.endpoint, credentialsFrom: this.credentialsFrom, doing };
    return explainS3Error(err, ctx);
  }
}

/**
 * Uploads skip the SigV4 payload hash (`UNSIGNED-PAYLOAD`, which S3 and its clones accept): it
 * is a second sha256 pass over every byte sent, after the one that named the artifact, and
 * every artifact is checked against its digest when it is read (on AWS the SDK's CRC32
 * checksum covers the transfer as well). It was a third of the client's CPU on large uploads.
 */
function unsignedUploads(client: S3Client): void {
  client.middlewareStack.add((next, context) => (args) => {
    if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand') {
      (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  }, { step: 'build', name: 'twinflowUnsignedPayload' });
}

/**
 * The object store a TWINFLOW_STORE value names: `s3://BUCKET/PREFIX` (S3-compatible storage,
 * configured by the AWS_* variables in `env`) or an absolute folder (`/mnt/x` or `file:///mnt/x`),
 * which only hosts that mount it can share.
 */
export function openObjectStore(url: string, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  if (url.startsWith('s3://')) return new S3Objects({ url, env });
  const dir = url.startsWith('file://') ? fileURLToPath(url) : url;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dir)?.[1];
  if (scheme) {
    throw new Error(`TWINFLOW_STORE=${url}: ${scheme}:// is not a store twinflow reads; use s3://BUCKET/PREFIX ` +
      '(for GCS: its S3 interface, AWS_ENDPOINT_URL=https://storage.googleapis.com with HMAC keys) or an absolute folder');
  }
  if (!path.isAbsolute(dir)) throw new Error(`TWINFLOW_STORE=${url} is neither s3://BUCKET/PREFIX nor an absolute folder; set it to one`);
  return new FolderObjects(dir);
}
