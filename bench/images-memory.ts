/**
 * Benchmark images (a): the peak memory of images/prepare on long and large images, each case
 * in a fresh child process (peak RSS is per process: /proc/self/status VmHWM). Reported:
 * the peak above the child's resident size when the stage starts (node, sharp, the
 * activity loaded), the absolute peak, the wall time, and what the stage did (prepared,
 * quarantined, its largest memory reservation). Linux only (it reads /proc).
 *
 *   BENCH_IMAGES=memory npm run bench -- images
 *     BENCH_IMAGES_WITH='{"memoryMB":512}' adds stage inputs; TWINFLOW_IMAGE_MEMORY_MB sizes
 *     the child's budget; BENCH_VIPS_THREADS=n sets libvips's threads
 *   tsx bench/images-memory.ts
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FIXTURES, writeFixture } from './images-fixtures.js';

export interface Case {
  label: string;
  images: string[];
  concurrency: number;
}

export interface ChildReport {
  startMB: number;
  peakMB: number;
  ms: number;
  counts: Record<string, number>;
}

const statusMB = (field: 'VmHWM' | 'VmRSS') => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const peakMB = () => statusMB('VmHWM');

/**
 * Where the work starts from: the resident size now, after resetting the peak to it (Linux
 * clear_refs 5), so memory that start-up touched and freed is not counted as headroom.
 */
function startMB(): number {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // older kernels: the peak then also covers start-up, and the difference is measured from RSS all the same
  }
  return statusMB('VmRSS');
}

/** Runs images/prepare on one manifest in this process and prints a ChildReport. */
async function child(spec: { images: string[]; concurrency: number; with: Record<string, unknown> }): Promise<void> {
  const { MockActivityEnvironment } = await import('@temporalio/testing');
  const { ArtifactStore } = await import('../activities/artifact-store.js');
  const { homeLayout } = await import('../activities/home.js');
  const { createPrepareImages } = await import('../activities/images/prepare.js');
  // libvips's thread count is sharp's process-wide setting; the estimate scales with it.
  if (process.env.BENCH_VIPS_THREADS) (await import('sharp')).default.concurrency(Number(process.env.BENCH_VIPS_THREADS));
  const home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-images-')));
  const store = new ArtifactStore(home.artifactsDir);
  const prepare = createPrepareImages({ store, home });
  const rows = spec.images.map((file, i) => ({ instance_id: `i${i}`, asins: [`i${i}`], title: 't', category: 'c', images: [{ path: file, role: 'listing' }] }));
  const manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const start = startMB();
  const t = performance.now();
  try {
    const result: { outputs: unknown } = await new MockActivityEnvironment({ attempt: 1 }).run(prepare, {
      runId: 'bench', stageId: 'prepare', uses: 'images/prepare', kindVersion: 'bench', shellEnv: {},
      with: { instances: manifest, concurrency: spec.concurrency, ...spec.with },
    } as never);
    const counts = (result.outputs as { counts: Record<string, number> }).counts;
    const report: ChildReport = { startMB: start, peakMB: peakMB(), ms: performance.now() - t, counts };
    console.log(JSON.stringify(report));
  } finally {
    await fs.rm(home.root, { recursive: true, force: true });
  }
}

export function runChild(c: Case, extra: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ChildReport {
  const spec = JSON.stringify({ images: c.images, concurrency: c.concurrency, with: extra });
  const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, '--child', spec], { maxBuffer: 1 << 20, env });
  return JSON.parse(out.toString().trim().split('\n').at(-1)!) as ChildReport;
}

function cases(dir: string): Case[] {
  const at = (name: string) => path.join(dir, name);
  const copies = (name: string) => [0, 1, 2, 3].map((i) => at(`${i}-${name}`));
  return [
    ...FIXTURES.map((f) => ({ label: f.name, images: [at(f.name)], concurrency: 1 })),
    { label: '4 x strip-39000000x1.png, concurrency 4', images: copies('strip-39000000x1.png'), concurrency: 4 },
    { label: '4 x rows-9750000x4.png, concurrency 4', images: copies('rows-9750000x4.png'), concurrency: 4 },
    { label: '4 x photo-6000x6000.png, concurrency 4', images: copies('photo-6000x6000.png'), concurrency: 4 },
  ];
}

export async function imagesMemoryBench(): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-images-'));
  const extra = JSON.parse(process.env.BENCH_IMAGES_WITH ?? '{}') as Record<string, unknown>;
  try {
    for (const f of FIXTURES) {
      const file = path.join(dir, f.name);
      await writeFixture(f, file);
      for (const i of [0, 1, 2, 3]) await fs.link(file, path.join(dir, `${i}-${f.name}`));
    }
    const lines = [`stage inputs: ${JSON.stringify(extra)}; peak RSS above the child's start (absolute peak)`];
    for (const c of cases(dir)) {
      const r = runChild(c, extra);
      const { prepared = 0, quarantined = 0, largestReservationMB } = r.counts;
      const reserved = largestReservationMB === undefined ? '' : `, largest reservation ${largestReservationMB} MB`;
      lines.push(
        `${c.label.padEnd(42)} +${(r.peakMB - r.startMB).toFixed(0).padStart(5)} MB (${r.peakMB.toFixed(0)} MB)  ` +
        `${(r.ms / 1000).toFixed(2).padStart(6)} s  prepared ${prepared}, quarantined ${quarantined}${reserved}`,
      );
    }
    return lines;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--child');
  if (at > 0) await child(JSON.parse(process.argv[at + 1]!));
  else console.log((await imagesMemoryBench()).map((l) => `  ${l}`).join('\n'));
}
