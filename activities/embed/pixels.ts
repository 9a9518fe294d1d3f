import sharp from 'sharp';
import type { PreprocessSpec } from './embed-images.js';

/**
 * RGB pixels (size x size x 3 bytes each) into an encoder's input: scaled, normalised by
 * mean and std, laid out NHWC or NCHW as its preprocessing spec says.
 */
export function pixelsToInput(images: readonly Buffer[], pre: PreprocessSpec): Float32Array {
  const px = pre.size * pre.size;
  const out = new Float32Array(images.length * px * 3);
  const toUnit = { '0..1': (b: number) => b / 255, '0..255': (b: number) => b, '-1..1': (b: number) => b / 127.5 - 1 }[pre.scale];
  images.forEach((pixels, n) => {
    for (let p = 0; p < px; p++) {
      for (let c = 0; c < 3; c++) {
        const v = (toUnit(pixels[p * 3 + c]!) - pre.mean[c]!) / pre.std[c]!;
        out[pre.layout === 'NHWC' ? (n * px + p) * 3 + c : (n * 3 + c) * px + p] = v;
      }
    }
  });
  return out;
}

/**
 * An image file or its bytes as size x size RGB pixels. Every image is stretched
 * (`fit: 'fill'`): cropping could cut the object off and padding gives images of one
 * aspect ratio a shared border; a stretch keeps all of the object.
 */
export async function decodePixels(image: string | Buffer, size: number): Promise<Buffer> {
  const { data, info } = await sharp(image).toColourspace('srgb').removeAlpha()
    .resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, not 3`);
  return data;
}
