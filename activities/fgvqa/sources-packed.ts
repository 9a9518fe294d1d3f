import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { readParquetBatches } from '../data/parquet-read.js';
import { imageType } from '../images/media-type.js';
import type { Identity } from './queries.js';
import { datasetFiles, group, requireColumns, SourceError, type SourceContext } from './source-files.js';

/**
 * Sources whose images come packed: ILIAS as webdataset tar shards, INQUIRE as Parquet
 * with the image bytes inside. Each image goes to the artifact store once (by content),
 * and queries name its path there, so predict and review read plain files.
 */

const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'webp']);

/**
 * ILIAS core database: webdataset shards (`ilias-core-db-NNNNNN.tar`, optionally .tar.gz)
 * in the root. A sample's `__key__` is its member path up to the first dot of the file
 * name (`bold_bimp_000/pos/P000_00.jpg` → `bold_bimp_000/pos/P000_00`); its instance is the
 * key's first path segment, or for a flat key the key without its `_NN` image number.
 */
export async function readIlias(root: string, ctx: SourceContext): Promise<Identity[]> {
  const names = await fs.readdir(root).catch(() => { throw new SourceError(`${root} is missing`); });
  const shards = names.filter((n) => /core[-_]db.*\.tar(\.gz)?$/i.test(n)).sort();
  if (!shards.length) {
    throw new SourceError(`no core_db webdataset shards (ilias-core-db-*.tar) in ${root}; it holds ${names.slice(0, 5).join(', ') || 'nothing'}${names.length > 5 ? ', …' : ''}`);
  }
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const shard of shards) {
    const file = path.join(root, shard);
    await readShard(file, async (member, bytes) => {
      const base = path.posix.basename(member);
      const dot = base.indexOf('.');
      if (dot <= 0) return;
      const ext = base.slice(dot + 1).toLowerCase();
      if (!IMAGE_EXTENSIONS.has(ext)) return;
      const key = path.posix.join(path.posix.dirname(member), base.slice(0, dot));
      if (seen.has(key)) throw new SourceError(`${file}: sample ${key} has more than one image (${ext}); expected one image per __key__`);
      seen.add(key);
      const stored = await storeImage(ctx, bytes, `${file}: ${member}`);
      if (stored) out.push([iliasInstance(key, file), stored]);
    });
  }
  if (!out.length) throw new SourceError(`${shards.join(', ')} in ${root} hold no .jpg/.png/.webp samples`);
  return group(out);
}

function iliasInstance(key: string, file: string): string {
  const clean = key.replace(/^\.\//, '');
  if (clean.includes('/')) return clean.split('/')[0]!;
  const m = clean.match(/^(.+)_\d+$/);
  if (!m) throw new SourceError(`${file}: cannot tell the instance of sample ${key}; expected <instance>/…/<image> or <instance>_<n>`);
  return m[1]!;
}

async function readShard(file: string, onMember: (name: string, bytes: Buffer) => Promise<void>): Promise<void> {
  const extract = tarExtract();
  const source = file.endsWith('.gz') ? pipeline(createReadStream(file), createGunzip(), extract) : pipeline(createReadStream(file), extract);
  const failed = source.catch((err: Error) => { throw new SourceError(`${file}: not a readable tar shard (${err.message})`); });
  failed.catch(() => undefined); // awaited below; the loop may fail first
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type === 'file') await onMember(entry.header.name, Buffer.concat(chunks));
    }
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`${file}: not a readable tar shard (${(err as Error).message})`);
  }
  await failed;
}

/**
 * INQUIRE (INQUIRE-Rerank) validation split as Parquet in the Hugging Face layout
 * (`data/validation-*.parquet`, or Parquet files in the root whose name says validation;
 * the root may also be one such file). Rows carry the image (`{bytes, path}`),
 * `inat24_image_id` and `inat24_species_name`; an image listed for several text queries
 * counts once.
 */
export async function readInquire(root: string, ctx: SourceContext): Promise<Identity[]> {
  const files = await datasetFiles(root, {
    isFile: (n) => n.endsWith('.parquet'),
    match: (n) => n.endsWith('.parquet') && /val/i.test(n),
    wanted: 'validation Parquet files (data/validation-*.parquet)',
    hint: 'point root at the INQUIRE-Rerank dataset folder',
  });
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const file of files) {
    const columns = await requireColumns(file, ['image', 'inat24_species_name'], ' or ');
    const idColumn = columns.includes('inat24_image_id') ? 'inat24_image_id' : undefined;
    let row = 0;
    for await (const table of readParquetBatches(file, { columns: ['image', 'inat24_species_name', ...(idColumn ? [idColumn] : [])], batchSize: 128 })) {
      const image = table.getChild('image')!;
      const bytesOf = image.getChild?.('bytes' as never) as { get(i: number): Uint8Array | null } | null | undefined;
      const species = table.getChild('inat24_species_name')!;
      const ids = idColumn ? table.getChild(idColumn) : null;
      if (!bytesOf) throw new SourceError(`${file}: the image column is not a {bytes, path} struct`);
      for (let i = 0; i < table.numRows; i++, row++) {
        const name = species.get(i) as string | null;
        if (!name) continue;
        // An image listed again (under another text query) is known by its id before its bytes are stored twice.
        const id = ids ? String(ids.get(i)) : undefined;
        if (id !== undefined && seen.has(id)) continue;
        const stored = await storeImage(ctx, Buffer.from(bytesOf.get(i) ?? []), `${file}: row ${row}`);
        if (!stored) continue;
        const key = id ?? stored;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push([name, stored]);
      }
    }
  }
  return group(out);
}

/** An image's bytes into the store; its artifact URI. Anything that is not an image is skipped, with why. */
export async function storeImage(ctx: SourceContext, bytes: Buffer, where: string): Promise<string | undefined> {
  if (!bytes.length) return void ctx.skip(where, 'no image bytes');
  if (imageType(bytes.subarray(0, 12)) === 'application/octet-stream') return void ctx.skip(where, 'not a JPEG, PNG, WebP or GIF image');
  const ref = await ctx.store.putBytes(bytes);
  ctx.stored?.();
  return ref.uri;
}
