/**
 * Benchmark images: images/prepare's memory, in two parts, each case in a fresh child process.
 *   memory    peak RSS of the shapes (a 39,000,000 x 1 PNG, a 1 x 39,000,000 PNG,
 *             a 9,750,000 x 4 PNG, 6000 x 6000 JPEG and PNG), alone and four at concurrency 4
 *             (bench/images-memory.ts)
 *   estimate  the decode-memory estimate each image reserves vs the peak it adds, over
 *             formats, sizes, maxSides and output formats; target: no estimate below
 *             (bench/images-estimate.ts)
 *
 *   npm run bench -- images                    (BENCH_IMAGES=memory or estimate for one part)
 */
import { estimateBench } from './images-estimate.js';
import { imagesMemoryBench } from './images-memory.js';

export async function imagesBench(): Promise<string[]> {
  const parts = (process.env.BENCH_IMAGES ?? 'memory,estimate').split(',');
  const lines: string[] = [];
  if (parts.includes('memory')) lines.push('images (a): images/prepare peak RSS', ...(await imagesMemoryBench()).map((l) => `  ${l}`));
  if (parts.includes('estimate')) lines.push('images (b): decode-memory estimate vs measured peak', ...(await estimateBench()).map((l) => `  ${l}`));
  return lines;
}
