/**
 * Builds the demo catalog from real photos that Debian packages ship (opencv-doc's
 * sample images, visp-images-data's image sequences): several views of the same objects,
 * arranged in the Amazon Reviews 2023 layout with a category table, plus a few broken
 * files so the demo shows quarantine at work. Nothing here is committed; setup runs it.
 *
 *   tsx scripts/build-demo-catalog.ts EXTRACTED_DEBS_ROOT OUT_DIR
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

interface Listing {
  asin: string;
  title: string;
  main: string;
  /** Listing photos, then photos that reach the catalog through reviews. */
  images: string[];
  reviews?: string[];
}

const OCV = 'usr/share/doc/opencv-doc/examples/data';
const VISP = 'usr/share/visp-images-data/ViSP-images';

// Two or more views of one object make an instance; single photos are distractors.
const LISTINGS: Listing[] = [
  { asin: 'TWD0001', title: 'Suzanne monkey head figurine, grey resin', main: 'Toys & Games', images: [`${OCV}/Blender_Suzanne1.jpg`], reviews: [`${OCV}/Blender_Suzanne2.jpg`] },
  { asin: 'TWD0002', title: 'Aloe vera in a terracotta pot', main: 'Patio, Lawn & Garden', images: [`${OCV}/aloeL.jpg`, `${OCV}/aloeR.jpg`] },
  { asin: 'TWD0003', title: 'Indoor basketball, size 7', main: 'Sports & Outdoors', images: [`${OCV}/basketball1.png`, `${OCV}/basketball2.png`] },
  { asin: 'TWD0004', title: 'Board game box, family edition', main: 'Toys & Games', images: [`${OCV}/box.png`, `${OCV}/box_in_scene.png`] },
  { asin: 'TWD0005', title: 'Graffiti wall art poster', main: 'Arts, Crafts & Sewing', images: [`${OCV}/graf1.png`, `${OCV}/graf3.png`] },
  { asin: 'TWD0006', title: 'Aerial city view poster', main: 'Arts, Crafts & Sewing', images: [`${OCV}/aero1.jpg`, `${OCV}/aero3.jpg`] },
  { asin: 'TWD0007', title: 'Leuven town hall postcard', main: 'Office Products', images: [`${OCV}/leuvenA.jpg`, `${OCV}/leuvenB.jpg`] },
  { asin: 'TWD0008', title: 'Rubber whale bath toy', main: 'Toys & Games', images: [`${OCV}/rubberwhale1.png`, `${OCV}/rubberwhale2.png`, 'broken/empty.png'] },
  { asin: 'TWD0009', title: 'Chessboard calibration target, 9x6', main: 'Toys & Games', images: [`${OCV}/left01.jpg`, `${OCV}/right01.jpg`, `${OCV}/left02.jpg`] },
  { asin: 'TWD0010', title: 'Printed notebook page', main: 'Office Products', images: [`${OCV}/imageTextN.png`, `${OCV}/imageTextR.png`] },
  { asin: 'TWD0011', title: 'Wooden toy cube with markers', main: 'Toys & Games', images: [0, 20, 40, 60].map((i) => `${VISP}/cube/image.${String(i).padStart(4, '0')}.pgm`) },
  { asin: 'TWD0012', title: 'Tracking cube, printed faces', main: 'Toys & Games', images: [0, 60, 120].map((i) => `${VISP}/mbt/cube/image${String(i).padStart(4, '0')}.pgm`) },
  { asin: 'TWD0013', title: 'The Kiss art print (Klimt)', main: 'Arts, Crafts & Sewing', images: [`${VISP}/Klimt/Klimt.png`] },
  // The same print sold twice: dedupe should find and merge these two listings.
  { asin: 'TWD0014', title: 'Klimt poster, golden edition', main: 'Arts, Crafts & Sewing', images: [`${VISP}/Klimt/Klimt.jpeg`] },
  { asin: 'TWD0015', title: 'Fresh fruit still life print', main: 'Arts, Crafts & Sewing', images: [`${OCV}/fruits.jpg`, 'broken/truncated.jpg'] },
  { asin: 'TWD0016', title: 'Orange, single fruit photo print', main: 'Arts, Crafts & Sewing', images: [`${OCV}/orange.jpg`] },
  { asin: 'TWD0017', title: 'Starry night canvas print', main: 'Arts, Crafts & Sewing', images: [`${OCV}/starry_night.jpg`] },
  { asin: 'TWD0018', title: 'Butterfly photo print', main: 'Arts, Crafts & Sewing', images: [`${OCV}/butterfly.jpg`] },
  { asin: 'TWD0019', title: 'Candy-coated chocolates, party pack', main: 'Grocery & Gourmet Food', images: [`${OCV}/smarties.png`] },
  { asin: 'TWD0020', title: 'Baboon portrait poster', main: 'Arts, Crafts & Sewing', images: [`${OCV}/baboon.jpg`, 'https://example.invalid/remote-only.jpg'] },
];

const CATEGORIES = `# Demo category table: the first rule a listing matches wins.
- { category: figurine, supercategory: toys, title: "figurine|toy cube|tracking cube" }
- { category: board-game, supercategory: toys, title: "board game|chessboard" }
- { category: bath-toy, supercategory: toys, title: "bath toy" }
- { category: ball, supercategory: sports, main_category: "Sports & Outdoors" }
- { category: plant, supercategory: garden, main_category: "Patio, Lawn & Garden" }
- { category: art-print, supercategory: decor, main_category: "Arts, Crafts & Sewing" }
- { category: stationery, supercategory: office, main_category: "Office Products" }
`;

/** Binary PGM (P5), which the image decoder does not read, to PNG. */
async function pgmToPng(file: string, out: string): Promise<void> {
  const buf = await fs.readFile(file);
  const header = /^P5\s+(?:#.*\s+)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(buf.subarray(0, 200).toString('latin1'));
  if (!header) throw new Error(`${file}: not a binary PGM`);
  const [all, w, h, max] = header.map(Number) as [number, number, number, number];
  if (max > 255) throw new Error(`${file}: 16-bit PGM is not supported`);
  const pixels = buf.subarray(header[0].length, header[0].length + w * h);
  void all;
  await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).png().toFile(out);
}

async function place(src: string, root: string, outDir: string, asin: string, i: number): Promise<string> {
  if (/^https?:/.test(src)) return src;
  const dir = path.join(outDir, 'images', asin);
  await fs.mkdir(dir, { recursive: true });
  if (src.startsWith('broken/')) {
    const target = path.join(dir, `${i}-${path.basename(src)}`);
    if (src.endsWith('empty.png')) await fs.writeFile(target, '');
    else await fs.writeFile(target, (await fs.readFile(path.join(root, OCV, 'fruits.jpg'))).subarray(0, 4000));
    return path.relative(outDir, target);
  }
  const from = path.join(root, src);
  const ext = src.endsWith('.pgm') ? '.png' : path.extname(src);
  const target = path.join(dir, `${i}${ext}`);
  if (src.endsWith('.pgm')) await pgmToPng(from, target);
  else await fs.copyFile(from, target);
  return path.relative(outDir, target);
}

async function main(root: string, outDir: string): Promise<void> {
  await fs.rm(outDir, { recursive: true, force: true });
  await fs.mkdir(outDir, { recursive: true });
  const meta: string[] = [];
  const reviews: string[] = [];
  for (const l of LISTINGS) {
    const images = await Promise.all(l.images.map((src, i) => place(src, root, outDir, l.asin, i)));
    const reviewImages = await Promise.all((l.reviews ?? []).map((src, i) => place(src, root, outDir, l.asin, 100 + i)));
    meta.push(JSON.stringify({
      main_category: l.main, title: l.title, average_rating: 4.4, rating_number: 12, features: [], description: [], price: null,
      images: images.map((ref) => ({ thumb: null, large: ref, variant: 'MAIN', hi_res: null })),
      videos: [], store: 'twinflow demo', categories: [], details: {}, parent_asin: l.asin, bought_together: null,
    }));
    if (reviewImages.length) {
      reviews.push(JSON.stringify({
        rating: 5, title: 'As pictured', text: 'Photo of mine attached.', asin: l.asin, parent_asin: l.asin, user_id: 'DEMOUSER',
        timestamp: 1700000000000, helpful_vote: 0, verified_purchase: true,
        images: reviewImages.map((ref) => ({ small_image_url: ref, medium_image_url: ref, large_image_url: ref, attachment_type: 'IMAGE' })),
      }));
    }
  }
  await fs.writeFile(path.join(outDir, 'meta_demo.jsonl'), `${meta.join('\n')}\n`);
  await fs.writeFile(path.join(outDir, 'reviews_demo.jsonl'), `${reviews.join('\n')}\n`);
  await fs.writeFile(path.join(outDir, 'categories.yaml'), CATEGORIES);
  console.log(`demo catalog: ${LISTINGS.length} listings in ${outDir}`);
}

const [root, out] = process.argv.slice(2);
if (!root || !out) {
  console.error('usage: tsx scripts/build-demo-catalog.ts EXTRACTED_DEBS_ROOT OUT_DIR');
  process.exit(2);
}
await main(path.resolve(root), path.resolve(out));
