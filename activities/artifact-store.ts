import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactRef } from '../engine/types.js';
import { sha256File } from './host-files.js';

const URI_PREFIX = 'artifact:sha256:';

/**
 * Content-addressed artifact store on a local (or shared) disk. Stages exchange
 * `ArtifactRef`s; the bytes live here, once per distinct content.
 */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256 digest: ${sha256}`);
    return path.join(this.dir, 'sha256', sha256.slice(0, 2), sha256);
  }

  /** Local path of a reference; refuses URIs that are not store URIs (never a path from outside). */
  resolve(ref: Pick<ArtifactRef, 'uri' | 'sha256'>): string {
    if (ref.uri !== `${URI_PREFIX}${ref.sha256}`) throw new Error(`not an artifact of this store: ${ref.uri}`);
    return this.pathOf(ref.sha256);
  }

  async putBytes(data: Uint8Array | string, mediaType?: string): Promise<ArtifactRef> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await this.place(sha256, (tmp) => fs.writeFile(tmp, bytes));
    return { uri: `${URI_PREFIX}${sha256}`, sha256, bytes: bytes.byteLength, ...(mediaType ? { mediaType } : {}) };
  }

  /** Copies a file into the store, hashing it as a stream so large files never sit in memory. */
  async putFile(file: string, mediaType?: string): Promise<ArtifactRef> {
    const sha256 = await sha256File(file);
    // A reflink where the filesystem can (no second copy of a large dataset file), else a copy.
    await this.place(sha256, (tmp) => fs.copyFile(file, tmp, fsConstants.COPYFILE_FICLONE));
    const { size } = await fs.stat(this.pathOf(sha256));
    return { uri: `${URI_PREFIX}${sha256}`, sha256, bytes: size, ...(mediaType ? { mediaType } : {}) };
  }

  async has(sha256: string): Promise<boolean> {
    return fs.access(this.pathOf(sha256)).then(() => true, () => false);
  }

  private async place(sha256: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.pathOf(sha256);
    if (await this.has(sha256)) return;
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await write(tmp);
    await fs.rename(tmp, target);
  }
}
