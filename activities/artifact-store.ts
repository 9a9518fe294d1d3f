import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FAILURE } from './failures.js';
import type { ArtifactRef } from '../engine/types.js';
import { sha256File, writeAtomically } from './host-files.js';
import { LocalCacheBudget } from './store/local-cache.js';
import { ObjectMissing, type ObjectStore } from './store/objects.js';

const URI_PREFIX = 'artifact:sha256:';

export interface ArtifactStoreOptions {
  /**
   * This host's folder of artifacts: the store itself when there is no `remote`, else a
   * read-through cache of the remote's objects (bounded by `cacheBytes`).
   */
  local: string;
  /** Where artifacts live for every host (S3-compatible storage); absent: `local` is the store. */
  remote?: ObjectStore;
  /** Most bytes the local cache keeps when there is a remote; least recently used go first. @default 20 GiB */
  cacheBytes?: number;
  /** Files used this recently are never evicted. @default 10 minutes */
  cacheGraceMs?: number;
}

/** The sha256 digest of a reference, an `artifact:sha256:` URI or a bare digest; throws on anything else. */
export function digestOf(ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>): string {
  const sha256 = typeof ref === 'string' ? (ref.startsWith(URI_PREFIX) ? ref.slice(URI_PREFIX.length) : ref) : ref.sha256;
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256 digest: ${typeof ref === 'string' ? ref : ref.uri}`);
  if (typeof ref !== 'string' && ref.uri !== `${URI_PREFIX}${sha256}`) throw new Error(`not an artifact of this store: ${ref.uri}`);
  return sha256;
}

export const artifactUri = (sha256: string) => `${URI_PREFIX}${sha256}`;

/** The object key of a digest, in the store and in the local folder alike. */
export const blobKey = (sha256: string) => `sha256/${sha256.slice(0, 2)}/${sha256}`;

/**
 * Content-addressed artifact store. Stages exchange `ArtifactRef`s; the bytes live here,
 * once per distinct content. With a remote (S3-compatible storage) every host reads and
 * writes the same objects and keeps what it used in a bounded local cache; without one,
 * the local folder is the store.
 */
export class ArtifactStore {
  readonly dir: string;
  readonly remote?: ObjectStore;
  private readonly budget?: LocalCacheBudget;
  /** Digests known to be in the remote: a stage that stores the same image twice asks once. */
  private readonly uploaded = new Set<string>();
  private readonly fetching = new Map<string, Promise<string>>();

  constructor(opts: ArtifactStoreOptions | string) {
    const o = typeof opts === 'string' ? { local: opts } : opts;
    this.dir = o.local;
    this.remote = o.remote;
    if (o.remote) this.budget = new LocalCacheBudget(path.join(o.local, 'sha256'), o.cacheBytes ?? 20 * 2 ** 30, o.cacheGraceMs);
  }

  /** Where the artifacts are, for messages. */
  get location(): string {
    return this.remote?.location ?? this.dir;
  }

  private localFile(sha256: string): string {
    return path.join(this.dir, ...blobKey(sha256).split('/'));
  }

  async putBytes(data: Uint8Array | string, mediaType?: string): Promise<ArtifactRef> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await this.place(sha256, bytes.byteLength, (tmp) => fs.writeFile(tmp, bytes));
    await this.upload(sha256);
    return refOf(sha256, bytes.byteLength, mediaType);
  }

  /** Copies a file into the store, hashing it as a stream so large files never sit in memory. */
  async putFile(file: string, mediaType?: string): Promise<ArtifactRef> {
    const sha256 = await sha256File(file);
    const { size } = await fs.stat(file);
    // A reflink where the filesystem can (no second copy of a large dataset file), else a copy;
    // the upload reads the file itself meanwhile, so a large file costs its hash and its upload.
    await Promise.all([
      this.place(sha256, size, (tmp) => fs.copyFile(file, tmp, fsConstants.COPYFILE_FICLONE)),
      this.upload(sha256, file),
    ]);
    return refOf(sha256, size, mediaType);
  }

  /** Whether the store holds these bytes (the remote's copy when there is one). */
  async has(ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>): Promise<boolean> {
    const sha256 = digestOf(ref);
    if (!this.remote) return exists(this.localFile(sha256));
    if (this.uploaded.has(sha256)) return true;
    const found = await this.remote.exists(blobKey(sha256));
    if (found) this.uploaded.add(sha256);
    return found;
  }

  /**
   * A local file holding the artifact's bytes, downloaded into this host's cache first when
   * needed and checked against its digest. Throws ArtifactMissing or ArtifactCorrupt.
   */
  async file(ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>): Promise<string> {
    const sha256 = digestOf(ref);
    const local = this.localFile(sha256);
    if (await exists(local)) {
      this.budget?.touch(local);
      return local;
    }
    if (!this.remote) throw artifactMissing(sha256, this.location);
    let pending = this.fetching.get(sha256);
    if (!pending) {
      pending = this.download(sha256).finally(() => this.fetching.delete(sha256));
      this.fetching.set(sha256, pending);
    }
    return pending;
  }

  /** The artifact's bytes (small artifacts: manifests, trees, reports). */
  async read(ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>): Promise<Buffer> {
    return fs.readFile(await this.file(ref));
  }

  private async download(sha256: string): Promise<string> {
    const local = this.localFile(sha256);
    let size = 0;
    try {
      // Checked before it is renamed into place: a damaged download never enters the cache.
      await writeAtomically(local, async (tmp) => {
        const got = await this.remote!.getFile(blobKey(sha256), tmp);
        if (got.sha256 !== sha256) throw artifactCorrupt(sha256, got.sha256, this.location);
        size = got.bytes;
      });
    } catch (err) {
      if (err instanceof ObjectMissing) throw artifactMissing(sha256, this.location);
      throw err;
    }
    await this.budget?.added(size, local);
    this.uploaded.add(sha256);
    return local;
  }

  private async place(sha256: string, size: number, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.localFile(sha256);
    if (await exists(target)) return this.budget?.touch(target);
    await writeAtomically(target, write);
    await this.budget?.added(size, target);
  }

  /** Uploads a digest (from `from`, by default its file in the local cache) unless the remote has it already. */
  private async upload(sha256: string, from = this.localFile(sha256)): Promise<void> {
    if (!this.remote || this.uploaded.has(sha256)) return;
    // A conditional put: one request when the bytes are new, none sent when they are there.
    await this.remote.putFile(blobKey(sha256), from, { ifAbsent: true });
    this.uploaded.add(sha256);
  }
}

function refOf(sha256: string, bytes: number, mediaType?: string): ArtifactRef {
  return { uri: artifactUri(sha256), sha256, bytes, ...(mediaType ? { mediaType } : {}) };
}

function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

function artifactMissing(sha256: string, location: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: FAILURE.artifactMissing,
    nonRetryable: true,
    message: `${artifactUri(sha256)} is not in the artifact store at ${location}. Run the stage that produced it again ` +
      '(with cache: false if it came from the cache), or check that every host uses the same TWINFLOW_STORE.',
  });
}

function artifactCorrupt(sha256: string, got: string, location: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: FAILURE.artifactCorrupt,
    nonRetryable: true,
    message: `the store's copy of ${artifactUri(sha256)} at ${location} is damaged: its bytes hash to ${got}. ` +
      `Delete the object ${blobKey(sha256)} and run the stage that produced it again (with cache: false).`,
  });
}
