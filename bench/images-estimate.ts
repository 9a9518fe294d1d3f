/**
 * Benchmark images (b): checks images/prepare's decode-memory estimate (the
 * reservation an image takes from the worker's budget) against the peak RSS its
 * preparation really adds, one image per fresh child process, over long strips, big photos
 * in every accepted format, three maxSides and three output formats. An estimate below the
 * measurement is marked UNDER: the budget would then not bound memory, and
 * activities/images/decode-memory.ts needs new figures.
 *
 *   BENCH_IMAGES=estimate npm run bench -- images    (BENCH_ESTIMATE_ONLY=regex picks probes by name)
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { flatPng, photo } from './images-fixtures.js';
import { runChild } from './images-memory.js';

interface Probe {
  name: string;
  bytes: () => Promise<Buffer>;
  /** [maxSide, output format] pairs to run it with. */
  runs: Array<[number, 'jpeg' | 'png' | 'webp']>;
}

const SIDE_512: Probe['runs'] = [[512, 'jpeg']];
const SIDES: Probe['runs'] = [[64, 'jpeg'], [512, 'jpeg'], [2048, 'jpeg']];
const OUTPUTS: Probe['runs'] = [[512, 'jpeg'], [8192, 'jpeg'], [8192, 'png'], [8192, 'webp']];

const strips: Probe[] = [
  [39_000_000, 1, 1], [19_500_000, 2, 1], [9_750_000, 4, 1], [2_437_500, 16, 1], [609_375, 64, 1], [100_000, 390, 1], [38_085, 1024, 3],
  [19_500, 2000, 1], [6244, 6245, 1], [13_000_000, 1, 3], [3_250_000, 4, 3], [609_375, 64, 4], [19_500, 2000, 4],
  [4_875_000, 4, 1, 16], [1, 39_000_000, 1], [2000, 19_500, 3],
].map(([w, h, c, d = 8]) => ({
  name: `${w}x${h}x${c}${d === 16 ? ' 16-bit' : ''}.png`,
  bytes: () => flatPng(w!, h!, c as 1 | 3 | 4, d as 8 | 16),
  runs: w! * h! > 30_000_000 ? SIDE_512 : SIDES,
}));

const photos: Probe[] = [
  { name: '6000x6000.jpg', bytes: () => photo(6000, 6000).jpeg({ quality: 90 }).toBuffer(), runs: OUTPUTS },
  { name: '6000x6000 progressive.jpg', bytes: () => photo(6000, 6000).jpeg({ quality: 90, progressive: true }).toBuffer(), runs: SIDES },
  { name: '6000x6000 cmyk.jpg', bytes: () => photo(6000, 6000).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer(), runs: OUTPUTS },
  { name: '1000x1000 cmyk.jpg', bytes: () => photo(1000, 1000).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer(), runs: SIDE_512 },
  { name: '300x200 cmyk.jpg', bytes: () => photo(300, 200).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer(), runs: SIDE_512 },
  { name: '6000x6000.png', bytes: () => photo(6000, 6000).png().toBuffer(), runs: OUTPUTS },
  { name: '6000x6000 rgba.png', bytes: () => photo(6000, 6000, 4).png().toBuffer(), runs: OUTPUTS },
  { name: '6000x6000 interlaced.png', bytes: () => photo(6000, 6000).png({ progressive: true }).toBuffer(), runs: SIDE_512 },
  { name: '6000x6000.webp', bytes: () => photo(6000, 6000).webp({ quality: 90 }).toBuffer(), runs: [...SIDES, [8192, 'jpeg']] },
  { name: '6000x6000 rgba.webp', bytes: () => photo(6000, 6000, 4).webp({ quality: 90 }).toBuffer(), runs: OUTPUTS },
  { name: '6000x6000.gif', bytes: () => photo(6000, 6000).gif().toBuffer(), runs: SIDE_512 },
  { name: '6000x6000.tiff', bytes: () => photo(6000, 6000).tiff().toBuffer(), runs: SIDE_512 },
  { name: '3000x3000.avif', bytes: () => photo(3000, 3000).avif({ quality: 50, effort: 0 }).toBuffer(), runs: SIDE_512 },
  { name: '6000x4000 rotated.jpg', bytes: () => photo(6000, 4000).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer(), runs: OUTPUTS },
  { name: '65000x600.jpg', bytes: () => photo(65_000, 600).jpeg({ quality: 90 }).toBuffer(), runs: SIDES },
  { name: '4000x4000.jpg', bytes: () => photo(4000, 4000).jpeg({ quality: 90 }).toBuffer(), runs: [[64, 'jpeg'], [500, 'jpeg'], [1000, 'jpeg'], [1500, 'jpeg'], [2000, 'jpeg'], [4096, 'jpeg']] },
  { name: '1000x1000.jpg', bytes: () => photo(1000, 1000).jpeg().toBuffer(), runs: SIDE_512 },
];

export async function estimateBench(): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-estimate-'));
  const env = { ...process.env, TWINFLOW_IMAGE_MEMORY_MB: '65536' };
  const lines: string[] = ['peak RSS added by preparing one image vs its reservation (file bytes included)'];
  let under = 0;
  try {
    const only = new RegExp(process.env.BENCH_ESTIMATE_ONLY ?? '');
    for (const probe of [...strips, ...photos].filter((p) => only.test(p.name))) {
      const file = path.join(dir, probe.name.replace(/ /g, '-'));
      await fs.writeFile(file, await probe.bytes());
      const fileMB = (await fs.stat(file)).size / (1 << 20);
      for (const [maxSide, format] of probe.runs) {
        const r = runChild({ label: probe.name, images: [file], concurrency: 1 }, { maxSide, format, memoryMB: 65536 }, env);
        const measured = r.peakMB - r.startMB;
        const estimate = r.counts.largestReservationMB ?? NaN;
        const flag = estimate < measured ? '  UNDER' : '';
        if (flag) under++;
        lines.push(`${`${probe.name} -> ${format} ${maxSide}`.padEnd(42)} measured ${measured.toFixed(0).padStart(5)} MB  estimate ${String(estimate).padStart(5)} MB  x${(estimate / measured).toFixed(2)}  (file ${fileMB.toFixed(0)} MB)${flag}`);
      }
      await fs.rm(file);
    }
    lines.push(under ? `${under} estimates below the measured peak` : 'every estimate covers the measured peak');
    return lines;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  console.log((await estimateBench()).map((l) => `  ${l}`).join('\n'));
}
