import fs from 'node:fs/promises';
import path from 'node:path';
import { limiter } from '../data/concurrency.js';
import type { ManifestImage } from '../data/manifest.js';
import { sha256File, within } from '../host-files.js';
import { invalidInput } from '../failures.js';

/** Files hashed at once: reads overlap on the thread pool while the main thread hashes. */
export const HASH_CONCURRENCY = 8;

/** Why a listed image is left out: the report's kind and a message with where it was. */
export type ImageProblem = [kind: string, message: string];

/**
 * The folder a catalog's relative image paths are under. A listed image is its real path
 * (symlinks followed) and must stay inside the folder's real path: a link that leads out
 * of it, to a file or through a linked folder, is refused, since the file would be read
 * and stored as if it were part of the dataset.
 */
export class ImagesRoot {
  private readonly limit = limiter(HASH_CONCURRENCY);

  private constructor(readonly root: string, readonly real: string) {}

  static async open(root: string): Promise<ImagesRoot> {
    const real = await fs.realpath(root).catch((err: NodeJS.ErrnoException) => {
      throw invalidInput(`the images folder ${root} cannot be read (${err.code ?? err.message}); set imagesRoot to the folder the catalog's image paths are under`);
    });
    return new ImagesRoot(root, real);
  }

  /** A local image, or why not. `where` says which listing named it. */
  async resolve(ref: string, role: ManifestImage['role'], where: string): Promise<ManifestImage | ImageProblem> {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
      return ['remoteImages', `${where}: ${ref} is remote; download the images and point the catalog at the files`];
    }
    const file = path.resolve(this.root, ref);
    if (!within(this.root, file)) return ['outsideImages', `${where}: ${ref} is outside the images folder ${this.root}`];
    return this.limit(async () => {
      let real: string;
      try {
        real = await fs.realpath(file);
        if (!(await fs.stat(real)).isFile()) return ['missingImages', `${where}: ${ref} is not a file`];
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return [code === 'ENOENT' ? 'missingImages' : 'unreadableImages', `${where}: ${ref}: ${code ?? (err as Error).message}`];
      }
      if (!within(this.real, real)) {
        return ['outsideImages', `${where}: ${ref} leads to ${real}, outside the images folder ${this.root} (a symbolic link out of it)`];
      }
      return { path: real, role, origin: ref };
    });
  }

  /** The image with `source_sha256`, the digest of its bytes as read now, or why it cannot be read. */
  async hash(image: ManifestImage, where: string): Promise<ManifestImage | ImageProblem> {
    return this.limit(async () => {
      try {
        return { ...image, source_sha256: await sha256File(image.path!) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return ['unreadableImages', `${where}: ${image.origin ?? image.path}: ${code ?? (err as Error).message}`];
      }
    });
  }
}

export const isProblem = (x: ManifestImage | ImageProblem): x is ImageProblem => Array.isArray(x);
