import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { artifactUri, type ArtifactStore } from '../artifact-store.js';
import { imageType } from '../images/media-type.js';
import { within } from '../host-files.js';

/** A listed image that can go into a query (its path), or why it is left out. */
export type Checked = { file: string; why?: undefined } | { why: string; file?: undefined };

/**
 * The gate every host path a dataset names passes before a query may show it (a model
 * gets the file's bytes as a data URL). A path must stay inside the dataset folder, by
 * name and, with symbolic links followed, by real path; the file must be a regular,
 * readable file whose bytes start like a JPEG, PNG, WebP or GIF. Images already in the
 * artifact store (taken out of shards or Parquet, or named by our own published rows)
 * pass as well. Results are kept, so each file is checked once per build.
 */
export class ImageChecker {
  private readonly verified = new Map<string, Promise<Checked>>();
  private readonly stored = new Map<string, Promise<Checked>>();

  private constructor(
    private readonly store: ArtifactStore,
    /** The dataset folder as given, and the folders (as given and real) paths may lead into. */
    readonly folder: string,
    private readonly named: string[],
    private readonly real: string[],
  ) {}

  /** `root` is the dataset folder, or a file in it (a Parquet or JSONL source). */
  static async open(store: ArtifactStore, root: string): Promise<ImageChecker> {
    const isFile = await fs.stat(root).then((s) => s.isFile(), () => false);
    const folder = isFile ? path.dirname(root) : root;
    const storeDir = path.join(path.resolve(store.dir), 'sha256');
    const real = (dir: string) => fs.realpath(dir).catch(() => dir);
    return new ImageChecker(store, folder, [folder, storeDir], [await real(folder), await real(storeDir)]);
  }

  /** `rel` resolved against `base` (a folder of the dataset), or why it names a file outside the dataset folder. */
  place(base: string, rel: string): Checked {
    const file = path.resolve(base, rel);
    if (this.named.some((dir) => within(dir, file))) return { file };
    return { why: `${rel} is outside the dataset folder ${this.folder}` };
  }

  /** The file's real path when it is an image inside the dataset folder; checked once. */
  verify(file: string): Promise<Checked> {
    let checked = this.verified.get(file);
    if (!checked) this.verified.set(file, (checked = this.inspect(file)));
    return checked;
  }

  /** The artifact URI of a verified image (copied into the store once), so queries name content, readable on any host. */
  copy(file: string): Promise<Checked> {
    let checked = this.stored.get(file);
    if (!checked) this.stored.set(file, (checked = this.intoStore(file)));
    return checked;
  }

  private async intoStore(file: string): Promise<Checked> {
    if (file.startsWith('artifact:sha256:')) return (await this.verify(file)).why === undefined ? { file } : this.verify(file);
    const checked = await this.verify(file);
    if (checked.why !== undefined) return checked;
    if (within(this.real[1]!, checked.file)) return { file: artifactUri(path.basename(checked.file)) };
    try {
      return { file: (await this.store.putFile(checked.file)).uri };
    } catch (err) {
      return { why: `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
  }

  private async inspect(file: string): Promise<Checked> {
    // Images taken out of shards or Parquet are in the store already, named by URI.
    if (file.startsWith('artifact:sha256:')) {
      return this.store.file(file).then((local) => ({ file: local }), (err: Error) => ({ why: `${file}: ${err.message}` }));
    }
    const cannot = (err: unknown): Checked => {
      const code = (err as NodeJS.ErrnoException).code;
      return { why: code === 'ENOENT' ? `${file} is missing` : `${file} cannot be read (${code ?? (err as Error).message})` };
    };
    let real: string;
    try {
      real = await fs.realpath(file);
    } catch (err) {
      return cannot(err);
    }
    if (!this.real.some((dir) => within(dir, real))) return { why: `${file} leads to ${real}, outside the dataset folder ${this.folder}` };
    try {
      // Stat before opening: opening a FIFO would wait for a writer forever.
      if (!(await fs.stat(real)).isFile()) return { why: `${file} is not a regular file` };
      const handle = await fs.open(real, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      try {
        const head = new Uint8Array(12);
        const { bytesRead } = await handle.read(head, 0, head.length, 0);
        if (!bytesRead) return { why: `${file} is empty` };
        if (imageType(head.subarray(0, bytesRead)) === 'application/octet-stream') return { why: `${file} is not a JPEG, PNG, WebP or GIF image` };
      } finally {
        await handle.close();
      }
    } catch (err) {
      return cannot(err);
    }
    return { file: real };
  }
}
