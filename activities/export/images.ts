import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The images a dataset uses, named by content: `images/<sha256>.<ext>`, each copied once
 * however many rows show it. Prepared images sit in the store without an extension, so
 * the extension comes from the file's first bytes.
 */

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));

/** The conventional extension of an image from its magic number, or undefined. */
export function sniffExtension(head: Uint8Array): string | undefined {
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpg';
  if (head[0] === 0x89 && ascii(head, 1, 4) === 'PNG') return 'png';
  if (ascii(head, 0, 4) === 'GIF8') return 'gif';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'webp';
  if (ascii(head, 0, 4) === 'II*\0' || ascii(head, 0, 4) === 'MM\0*') return 'tif';
  if (ascii(head, 4, 8) === 'ftyp') {
    const brand = ascii(head, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (brand.startsWith('hei') || brand === 'mif1') return 'heic';
  }
  return undefined;
}

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await fs.open(file, 'r');
  try {
    const head = new Uint8Array(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface PlaceOptions {
  /** The local file of a digest (the artifact store's, downloading it first where it is remote). */
  fileOf: (sha256: string) => Promise<string>;
  /** Folder to copy into; undefined only names the images (embed mode without path exports). */
  dir?: string;
  concurrency?: number;
  signal?: AbortSignal;
  onDone?: (done: number) => void;
}

/**
 * For every used image (`used[i] === 1`): its extension, its local file, and its copy
 * under `dir`. A missing or unrecognisable file throws with the image's digest and path.
 */
export async function placeImages(
  images: Array<{ sha256: string }>, used: Uint8Array, options: PlaceOptions,
): Promise<{ extensions: string[]; files: string[] }> {
  const extensions = new Array<string>(images.length).fill('');
  const files = new Array<string>(images.length).fill('');
  const todo = images.flatMap((_, i) => (used[i] ? [i] : []));
  if (options.dir) await fs.mkdir(options.dir, { recursive: true });
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < todo.length) {
      if (options.signal?.aborted) return;
      const i = todo[next++]!;
      const image = images[i]!;
      const file = (files[i] = await options.fileOf(image.sha256));
      // Prepared images are small (512 px): reading one whole and writing it is two calls, a copy four.
      const bytes = options.dir ? await fs.readFile(file) : await readHead(file);
      const ext = sniffExtension(bytes);
      if (!ext) throw new Error(`image ${image.sha256} (${file}) is not a JPEG, PNG, WebP, GIF, TIFF, AVIF or HEIC file`);
      extensions[i] = ext;
      if (options.dir) await fs.writeFile(path.join(options.dir, `${image.sha256}.${ext}`), bytes);
      options.onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, todo.length) }, worker));
  return { extensions, files };
}
