import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';

/**
 * A source image's bytes, read once. Everything prepare decides about an image (its digest
 * against the manifest, its header, its pixels) is decided on these bytes, never on a
 * second read of the path, so a file edited in place cannot slip between check and decode.
 */

const MB = 1 << 20;

/** The file's size, or why it cannot be an image. */
export async function checkFile(file: string, maxFileMB: number): Promise<number | string> {
  const stat = await fs.stat(file).catch((err: NodeJS.ErrnoException) => err);
  if (stat instanceof Error) {
    return stat.code === 'ENOENT' || stat.code === 'ENOTDIR' ? 'file not found' : `unreadable file (${stat.code ?? 'error'})`;
  }
  if (!stat.isFile()) return 'not a regular file';
  if (stat.size === 0) return 'empty file (0 bytes)';
  if (stat.size > maxFileMB * MB) return `file too large: ${(stat.size / MB).toFixed(1)} MB exceeds maxFileMB ${maxFileMB}`;
  return stat.size;
}

/**
 * Reads the whole file, expecting `size` bytes: one byte more is asked for, so a file that
 * grew since it was measured is noticed (and never read past what was reserved for it).
 */
export async function readWhole(file: string, size: number): Promise<Buffer | string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    return `unreadable file (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  try {
    const buffer = Buffer.allocUnsafe(size + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled !== size) return 'changed while images/prepare read it (its size moved): run the pipeline again';
    return buffer.subarray(0, size);
  } finally {
    await handle.close();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Why the bytes are not the ones twin/source listed, or undefined when they are (or it recorded none). */
export function digestMismatch(bytes: Uint8Array, expected: string | undefined): string | undefined {
  if (!expected) return undefined;
  const actual = sha256(bytes);
  if (actual === expected.toLowerCase()) return undefined;
  return `changed since twin/source read it (sha256 ${actual.slice(0, 12)}..., the manifest has ${expected.slice(0, 12)}...): run the pipeline again`;
}

/*
 * libvips's error text is not a function of the file: its error buffer is shared by every
 * thread, so concurrent failures bleed into each other's messages, and which tile fails
 * first varies. Reasons are therefore built from the file's own bytes, keeping the report
 * (and its digest) identical from run to run.
 */
export function whyUndecodable(bytes: Buffer, format: string): string {
  const tail = bytes.subarray(-16);
  const ends: Record<string, (t: Buffer) => boolean> = {
    jpeg: (t) => t.subarray(-2).equals(Buffer.from([0xff, 0xd9])),
    png: (t) => t.includes('IEND'),
    gif: (t) => t.at(-1) === 0x3b,
  };
  const complete = ends[format];
  if (complete && !complete(tail)) return `truncated or corrupt: the ${format} file ends early (no end marker)`;
  return `truncated or corrupt: the ${format} pixel data does not decode`;
}
