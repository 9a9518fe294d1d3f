import { describe, expect, it } from 'vitest';
import { decodeBytes, loadedSize, outputSize, type DecodeHeader, type EncodeShape } from '../../activities/images/decode-memory.js';

const MiB = 1 << 20;
const png = (width: number, height: number, more: Partial<DecodeHeader> = {}): DecodeHeader => ({ format: 'png', width, height, channels: 3, depth: 'uchar', ...more });
const jpeg = (width: number, height: number, more: Partial<DecodeHeader> = {}): DecodeHeader => ({ ...png(width, height), format: 'jpeg', ...more });
const toJpeg512: EncodeShape = { maxSide: 512, format: 'jpeg' };
const mb = (h: DecodeHeader, out = toJpeg512, threads = 1) => decodeBytes(h, out, threads) / MiB;

describe('decode-memory estimate', () => {
  it('puts a few-row strip far above a square photo of the same pixel count (what libvips really holds)', () => {
    // Measured with libvips 8.18: 1,146 MB and 16 MB (grey); bench/images-estimate.ts keeps these honest.
    const strip = mb(png(9_750_000, 4, { channels: 1 }));
    const square = mb(png(6245, 6245, { channels: 1 }));
    expect(strip).toBeGreaterThan(1146);
    expect(square).toBeGreaterThan(16);
    expect(strip).toBeGreaterThan(square * 20);
  });

  it('grows in proportion with the width of a strip and with bytes per pixel', () => {
    const narrow = decodeBytes(png(1_000_000, 1), toJpeg512);
    const wide = decodeBytes(png(10_000_000, 1), toJpeg512);
    expect(wide / narrow).toBeGreaterThan(8);
    expect(mb(png(10_000_000, 1, { depth: 'ushort' }))).toBeGreaterThan(mb(png(10_000_000, 1)) * 1.8);
    expect(mb(png(10_000_000, 1, { channels: 4 }))).toBeGreaterThan(mb(png(10_000_000, 1, { channels: 1 })) * 3);
  });

  it('lets a baseline JPEG shrink on load as sharp does, but not a CMYK one', () => {
    expect(loadedSize(jpeg(6000, 6000), 512)).toEqual({ width: 750, height: 750 }); // shrink 11.7: decoded at 1/8
    expect(loadedSize(jpeg(4096, 4096), 512)).toEqual({ width: 1024, height: 1024 }); // exactly 8: one step less
    expect(loadedSize(jpeg(6000, 6000, { channels: 4 }), 512)).toMatchObject({ width: 6000, height: 6000 });
    expect(loadedSize(png(6000, 6000), 512)).toMatchObject({ width: 6000, height: 6000 });
    expect(mb(jpeg(6000, 6000))).toBeLessThan(mb(png(6000, 6000)));
  });

  it('adds the whole frame for decoders that hold it: progressive JPEG, interlaced PNG, GIF', () => {
    const frame = (6000 * 6000 * 3) / MiB;
    expect(mb(jpeg(6000, 6000, { isProgressive: true })) - mb(jpeg(6000, 6000))).toBeGreaterThan(frame);
    expect(mb(png(6000, 6000, { isProgressive: true })) - mb(png(6000, 6000))).toBeGreaterThan(frame);
    expect(mb(png(6000, 6000, { format: 'gif' }))).toBeGreaterThan(frame * 2);
  });

  it('counts the whole output when nothing shrinks it, more for WebP with alpha', () => {
    expect(outputSize(6000, 4000, 8192)).toEqual({ width: 6000, height: 4000 });
    expect(outputSize(39_000_000, 1, 512)).toEqual({ width: 512, height: 1 });
    const full: EncodeShape = { maxSide: 8192, format: 'jpeg' };
    expect(mb(jpeg(6000, 6000), full)).toBeGreaterThan(mb(jpeg(6000, 6000)) + 6000 * 6000 * 6 / MiB);
    const webp: EncodeShape = { maxSide: 8192, format: 'webp' };
    expect(mb(png(6000, 6000, { channels: 4, hasAlpha: true }), webp)).toBeGreaterThan(6000 * 6000 * 36 / MiB);
  });

  it('grows with libvips threads for a tall image, not for a one-row strip that has a single strip to work on', () => {
    expect(mb(png(6000, 6000), toJpeg512, 4)).toBeGreaterThan(mb(png(6000, 6000), toJpeg512, 1) * 1.3);
    expect(mb(png(39_000_000, 1), toJpeg512, 4)).toBe(mb(png(39_000_000, 1), toJpeg512, 1));
  });
});
