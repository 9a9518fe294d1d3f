/**
 * Image files for the images/prepare memory benchmark, written without decoding anything
 * large: PNGs are assembled chunk by chunk with a streamed deflate, so a 39-megapixel
 * strip costs this process a few MB, not the raster.
 */
import fs from 'node:fs/promises';
import zlib from 'node:zlib';
import sharp from 'sharp';

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([head, body, crc]);
}

/** A flat grey (or RGB/RGBA) PNG of any size, 8 or 16 bits a sample. */
export async function flatPng(width: number, height: number, channels: 1 | 2 | 3 | 4 = 1, depth: 8 | 16 = 8): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const rowBytes = (width * channels * depth) / 8 + 1;
  const rowsPerBlock = Math.max(1, Math.floor((1 << 22) / rowBytes));
  const block = Buffer.alloc(rowBytes * rowsPerBlock, 0x80);
  for (let o = 0; o < block.length; o += rowBytes) block[o] = 0; // filter type 0 on every row
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  for (let left = height; left > 0; left -= rowsPerBlock) {
    if (!deflate.write(block.subarray(0, Math.min(left, rowsPerBlock) * rowBytes))) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(parts)), chunk('IEND', Buffer.alloc(0))]);
}

/** A photo-like raster (a gradient with a little seeded noise), so encoders do real work. */
export function photo(width: number, height: number, channels: 3 | 4 = 3) {
  const pixels = Buffer.alloc(width * height * channels);
  let x = 7;
  for (let i = 0; i < pixels.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    pixels[i] = ((((i / channels) % width) / width) * 200 + ((x >> 16) & 15)) | 0;
  }
  return sharp(pixels, { raw: { width, height, channels }, limitInputPixels: false });
}

export interface Fixture {
  name: string;
  bytes: () => Promise<Buffer>;
}

/** The shapes the issue and the estimate care about: long strips, few-row strips, big photos. */
export const FIXTURES: Fixture[] = [
  { name: 'strip-39000000x1.png', bytes: () => flatPng(39_000_000, 1) },
  { name: 'column-1x39000000.png', bytes: () => flatPng(1, 39_000_000) },
  { name: 'rows-9750000x4.png', bytes: () => flatPng(9_750_000, 4) },
  { name: 'photo-6000x6000.jpg', bytes: () => photo(6000, 6000).jpeg({ quality: 90 }).toBuffer() },
  { name: 'photo-6000x6000.png', bytes: () => photo(6000, 6000).png().toBuffer() },
];

export async function writeFixture(fixture: Fixture, file: string): Promise<void> {
  await fs.writeFile(file, await fixture.bytes());
}
