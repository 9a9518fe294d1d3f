/**
 * Bench probe: (a) probe/encoder's fit path on 20,000 x 1,792 clustered synthetic features
 * (fitProbe: gpu/probe_fit.py through runTool, its record read back, then the features
 * stored as the stage outputs them) against scikit-learn alone on the same files
 * (bench/python/probe_sklearn.py, a plain script doing the same LogisticRegression grid,
 * refit and KNeighborsClassifier; timed as a whole process, and after its imports); target
 * <= 1.1x. (b) Feature-extraction throughput on CPU of the probe path (embedWithOnnx) beside
 * embed/images on the same JPEGs, the same encoder, batch size and threads, session
 * creation included on both sides. Runs alternate; medians.
 *
 * BENCH_PROBE_ROWS (20000), BENCH_PROBE_REPS (2), BENCH_PROBE_IMAGES (200) size it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { ArtifactStore } from '../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../activities/data/manifest.js';
import { createEmbedImages } from '../activities/embed/embed-images.js';
import { homeLayout } from '../activities/home.js';
import { embedWithOnnx, openOnnxEncoder } from '../activities/probe/features-onnx.js';
import { fitProbe } from '../activities/probe/fit.js';
import { storeFeatures } from '../activities/probe/probe-encoder.js';
import type { StageActivityInput } from '../activities/stage-io.js';
import { openStores } from '../activities/store/config.js';
import { seededRandom } from '../activities/twin/pairs.js';
import { DEFAULT_EMBED_MODEL } from '../engine/kinds/embed.js';
import type { JsonObject } from '../engine/types.js';

const ROWS = Number(process.env.BENCH_PROBE_ROWS ?? 20_000);
const REPS = Number(process.env.BENCH_PROBE_REPS ?? 2);
const IMAGES = Number(process.env.BENCH_PROBE_IMAGES ?? 200);
const DIMS = 1792;
const C = [1, 10];
const PYTHON = path.resolve('.venv/bin/python');
const BASELINE = 'bench/python/probe_sklearn.py';

/** CPU seconds of this process and its waited-for children (Linux /proc): robust to other load on a shared machine, unlike wall time. */
async function cpuSeconds(): Promise<number> {
  const fields = (await fs.readFile('/proc/self/stat', 'utf8')).split(') ')[1]!.split(' ');
  const own = process.cpuUsage();
  return (Number(fields[13]) + Number(fields[14])) / 100 + (own.user + own.system) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const input = (stageId: string, w: JsonObject = {}): StageActivityInput => ({ runId: 'bench', stageId, uses: 'probe/encoder', kindVersion: '1', with: w, shellEnv: {} });
const inActivity = <T>(fn: () => Promise<T>): Promise<T> => new MockActivityEnvironment({ attempt: 1 }).run(fn);

async function fitBench(root: string): Promise<string[]> {
  const features = path.join(root, 'features');
  execFileSync(PYTHON, [BASELINE, 'make', features, '--rows', String(ROWS), '--dims', String(DIMS)]);
  const home = homeLayout(path.join(root, 'home'));
  const { logs, artifacts: store } = openStores(home);
  const times = { twinflow: [] as number[], process: [] as number[], fit: [] as number[], twinflowCpu: [] as number[], processCpu: [] as number[] };
  let numbers = '';
  for (let rep = 0; rep < REPS; rep++) {
    // A fresh folder of links each run, so the kept fit record is never reused.
    const dir = path.join(root, `run-${rep}`);
    await fs.mkdir(dir);
    for (const f of ['train.f32', 'test.f32', 'labels.json']) await fs.symlink(path.join(features, f), path.join(dir, f));
    let cpu = await cpuSeconds();
    let started = performance.now();
    const result = await inActivity(async () => {
      const r = await fitProbe(dir, { seed: 0, k: 20, temperature: 0.07, C, valFraction: 0.2, maxIter: 1000 }, { logs, input: input(`fit-${rep}`), where: 'bench', python: PYTHON });
      await storeFeatures(store, dir, r);
      return r;
    });
    times.twinflow.push((performance.now() - started) / 1000);
    times.twinflowCpu.push(await cpuSeconds() - cpu);
    cpu = await cpuSeconds();
    started = performance.now();
    const base = JSON.parse(execFileSync(PYTHON, [BASELINE, 'fit', features, '--C', C.join(',')], { encoding: 'utf8' })) as { seconds: number; linear: number; knn: number; C: number };
    times.process.push((performance.now() - started) / 1000);
    times.processCpu.push(await cpuSeconds() - cpu);
    times.fit.push(base.seconds);
    numbers = `twinflow linear ${result.linear.toFixed(2)} / kNN ${result.knn.toFixed(2)} / C ${result.C}; scikit-learn alone ${base.linear.toFixed(2)} / ${base.knn.toFixed(2)} / C ${base.C}`;
  }
  const runs = (xs: number[]) => xs.map((s) => s.toFixed(1)).join('/');
  return [
    `probe (a): linear probe (C grid ${C.join(', ')} on a 20% validation split, then refit) + kNN (k 20) on ${ROWS.toLocaleString('en')} x ${DIMS.toLocaleString('en')} features (a fifth test); ${REPS} alternating runs`,
    `  twinflow fitProbe + stored features  ${median(times.twinflow).toFixed(1)} s wall (runs ${runs(times.twinflow)}), ${median(times.twinflowCpu).toFixed(1)} CPU s (runs ${runs(times.twinflowCpu)})`,
    `  scikit-learn alone, whole process    ${median(times.process).toFixed(1)} s wall (runs ${runs(times.process)}), ${median(times.processCpu).toFixed(1)} CPU s (runs ${runs(times.processCpu)}); after imports ${median(times.fit).toFixed(1)} s`,
    `  ratio ${(median(times.twinflow) / median(times.process)).toFixed(3)}x wall, ${(median(times.twinflowCpu) / median(times.processCpu)).toFixed(3)}x CPU time (target <= 1.1x; wall time swings with other load on a shared machine)`,
    `  ${numbers}`,
  ];
}

/** Seeded crops of the demo photos, 160-512 px, as JPEG files. */
async function images(dir: string): Promise<string[]> {
  const demo = 'data/demo/images';
  const sources = (await fs.readdir(demo, { recursive: true })).map((n) => path.join(demo, n)).filter((f) => /\/0\.(jpg|png)$/.test(f)).sort();
  if (!sources.length) throw new Error(`no photos under ${demo}; run \`npm run setup\` to build the demo data`);
  const random = seededRandom(11);
  const files: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const source = sources[i % sources.length]!;
    const { width: w = 0, height: h = 0 } = await sharp(source).metadata();
    const cw = Math.round(w * (0.6 + 0.4 * random()));
    const ch = Math.round(h * (0.6 + 0.4 * random()));
    const side = 160 + Math.floor(random() * 353);
    const file = path.join(dir, `${String(i).padStart(4, '0')}.jpg`);
    await sharp(source).extract({ left: Math.floor((w - cw) * random()), top: Math.floor((h - ch) * random()), width: cw, height: ch })
      .resize(side, side, { fit: 'inside' }).flatten({ background: '#ffffff' }).jpeg({ quality: 88 }).toFile(file);
    files.push(file);
  }
  return files;
}

async function extractBench(root: string): Promise<string[]> {
  await fs.mkdir(path.join(root, 'images'));
  const files = await images(path.join(root, 'images'));
  const home = homeLayout(path.join(root, 'home-embed'));
  const store = new ArtifactStore(home.artifactsDir);
  const rows: ManifestRow[] = files.map((file, i) => ({ instance_id: `I${i}`, asins: [`I${i}`], title: 'bench', category: 'bench', images: [{ path: file, role: 'listing' }] }));
  const manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
  const threads = os.availableParallelism();
  const embed = createEmbedImages({ store, home });
  const times = { probe: [] as number[], embed: [] as number[] };
  for (let rep = 0; rep <= 3; rep++) {
    let started = performance.now();
    await inActivity(async () => {
      const encoder = await openOnnxEncoder({ model: DEFAULT_EMBED_MODEL, threads, batchSize: 16 }, input(`x-${rep}`));
      await embedWithOnnx(encoder, files.map((file) => ({ file })), path.join(root, `probe-${rep}.f32`), input(`x-${rep}`), 'bench', () => undefined);
      await encoder.session.release();
    });
    const probe = (performance.now() - started) / 1000;
    started = performance.now();
    await new MockActivityEnvironment({ attempt: 1 }).run(embed, { ...input(`e-${rep}`), uses: 'embed/images', with: { instances: { ...manifest }, batchSize: 16, threads } as unknown as JsonObject });
    const base = (performance.now() - started) / 1000;
    if (rep === 0) continue; // warm-up
    times.probe.push(probe);
    times.embed.push(base);
  }
  const rate = (xs: number[]) => IMAGES / median(xs);
  return [
    `probe (b): feature extraction on CPU, ${IMAGES} JPEGs (160-512 px) through ${DEFAULT_EMBED_MODEL}, batch 16, ${threads} threads; medians of 3 alternating runs after a warm-up`,
    `  probe/encoder's path (embedWithOnnx)  ${rate(times.probe).toFixed(1)} images/s`,
    `  embed/images (the embedding baseline) ${rate(times.embed).toFixed(1)} images/s`,
    `  ratio ${(rate(times.probe) / rate(times.embed)).toFixed(3)}x (target >= 1.0x)`,
  ];
}

/** Runs both parts; returns the lines to print. */
export async function probeBench(): Promise<string[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-probe-'));
  try {
    return [...await extractBench(root), ...await fitBench(root)];
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}
