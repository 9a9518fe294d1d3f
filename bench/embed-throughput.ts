/**
 * Bench (c), embedding throughput: twinflow's `embed/images` activity (sharp decoding +
 * onnxruntime-node, run for real in a MockActivityEnvironment) against onnxruntime-python + PIL
 * (bench/python/embed_throughput.py) on the same ONNX file, the same JPEGs, batch size and
 * intra-op threads. Both timings are end to end and include creating the session, because
 * the activity opens its own on every call; imports and process start are outside both.
 * One warm-up, then medians of alternating runs; rows of the two sides compared by cosine.
 *
 *   npx tsx -e "import('./bench/embed-throughput.ts').then(async m => console.log((await m.embedBench()).join('\n')))"
 *
 * BENCH_EMBED_IMAGES (default 300) and BENCH_REPS (default 3) size it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { ArtifactStore } from '../activities/artifact-store.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../activities/data/manifest.js';
import { createEmbedImages } from '../activities/embed/embed-images.js';
import { cosine, readMatrix, row } from '../activities/embed/matrix.js';
import { homeLayout, type HomeLayout } from '../activities/home.js';
import type { StageActivityInput, StageActivityResult } from '../activities/stage-io.js';
import { seededRandom } from '../activities/twin/pairs.js';
import { DEFAULT_EMBED_MODEL, preprocessPathFor } from '../engine/kinds/embed.js';
import type { ArtifactRef, JsonObject } from '../engine/types.js';

const IMAGES = Number(process.env.BENCH_EMBED_IMAGES ?? 300);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const BATCH = 16;
const SEED = 7;
const DEMO_IMAGES = 'data/demo/images';
const PYTHON = '.venv/bin/python';
const MAX_SIDE = 512;

interface Bench { store: ArtifactStore; home: HomeLayout; manifest: ArtifactRef; list: string; root: string; threads: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Whole demo photos in a fixed order; the demo keeps broken files on purpose (for quarantine). */
async function demoSources(): Promise<string[]> {
  const names = (await fs.readdir(DEMO_IMAGES, { recursive: true })).sort();
  const sources: string[] = [];
  for (const name of names) {
    const file = path.join(DEMO_IMAGES, name);
    if (!(await fs.stat(file)).isFile()) continue;
    const whole = await sharp(file, { failOn: 'truncated' }).stats().then(() => true, () => false);
    if (whole) sources.push(file);
  }
  if (sources.length === 0) throw new Error(`no readable photos under ${DEMO_IMAGES}; run \`npm run setup\` to build the demo data`);
  return sources;
}

/**
 * Image i: demo photo i re-encoded as a prepared JPEG for the first pass over the photos,
 * then seeded crops (60-100% of each side) resized to 160-512 px longest side.
 */
async function variant(source: string, i: number, first: boolean, rand: () => number, file: string): Promise<void> {
  const meta = await sharp(source).metadata();
  const [w, h] = [meta.width!, meta.height!];
  let img = sharp(source);
  let longest = Math.min(MAX_SIDE, Math.max(w, h));
  if (!first) {
    const cw = Math.max(32, Math.round(w * (0.6 + 0.4 * rand())));
    const ch = Math.max(32, Math.round(h * (0.6 + 0.4 * rand())));
    img = img.extract({ left: Math.floor((w - cw) * rand()), top: Math.floor((h - ch) * rand()), width: cw, height: ch });
    longest = 160 + Math.floor(rand() * (MAX_SIDE - 160 + 1));
  }
  await img.resize(longest, longest, { fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' }).toColourspace('srgb').jpeg({ quality: 80 + (i % 16) }).toFile(file);
}

/** The image set, stored content-addressed as images/prepare leaves it, three images per instance. */
async function prepareImages(store: ArtifactStore, dir: string): Promise<ManifestRow[]> {
  const sources = await demoSources();
  const rand = seededRandom(SEED);
  const rows: ManifestRow[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const file = path.join(dir, `${String(i).padStart(4, '0')}.jpg`);
    await variant(sources[i % sources.length]!, i, i < sources.length, rand, file);
    const ref = await store.putFile(file, 'image/jpeg');
    const meta = await sharp(file).metadata();
    const image: ManifestImage = { path: (await store.file(ref)), role: 'listing', sha256: ref.sha256, width: meta.width!, height: meta.height! };
    if (i % 3 === 0) {
      const id = `B${String(rows.length).padStart(4, '0')}`;
      rows.push({ instance_id: id, asins: [id], title: `Bench item ${rows.length}`, category: 'bench', images: [] });
    }
    rows.at(-1)!.images.push(image);
  }
  return rows;
}

async function setUp(): Promise<Bench> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-embed-'));
  const home = homeLayout(path.join(root, 'home'));
  const store = new ArtifactStore(home.artifactsDir);
  await fs.mkdir(path.join(root, 'images'), { recursive: true });
  const rows = await prepareImages(store, path.join(root, 'images'));
  const manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
  const list = path.join(root, 'images.txt');
  await fs.writeFile(list, rows.flatMap((r) => r.images.map((im) => im.path)).join('\n') + '\n');
  return { store, home, manifest, list, root, threads: os.availableParallelism() };
}

/** One end-to-end run of the real activity; a fresh stage id so nothing is reused. */
async function runTwinflow(b: Bench, rep: number): Promise<{ seconds: number; embeddings: ArtifactRef }> {
  const embed = createEmbedImages({ store: b.store, home: b.home });
  const input: StageActivityInput = {
    runId: 'bench', stageId: `embed-${rep}`, uses: 'embed/images', kindVersion: '1', shellEnv: {},
    with: { instances: { ...b.manifest }, model: DEFAULT_EMBED_MODEL, batchSize: BATCH, threads: b.threads } as unknown as JsonObject,
  };
  const started = performance.now();
  const result = (await new MockActivityEnvironment({ attempt: 1 }).run(embed, input)) as StageActivityResult;
  const seconds = (performance.now() - started) / 1000;
  return { seconds, embeddings: (result.outputs as unknown as { embeddings: ArtifactRef }).embeddings };
}

interface PythonRun { seconds: number; session_seconds: number; run_seconds: number }

function runPython(b: Bench, out: string): PythonRun {
  const args = ['bench/python/embed_throughput.py', DEFAULT_EMBED_MODEL, preprocessPathFor(DEFAULT_EMBED_MODEL), b.list, out, String(BATCH), String(b.threads)];
  return JSON.parse(execFileSync(PYTHON, args, { encoding: 'utf8' })) as PythonRun;
}

/** Session creation alone in node, with the activity's options, for the report line. */
async function nodeSessionSeconds(threads: number): Promise<number> {
  const started = performance.now();
  const session = await ort.InferenceSession.create(path.resolve(DEFAULT_EMBED_MODEL), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  return seconds;
}

async function compareRows(b: Bench, embeddings: ArtifactRef, pythonOut: string): Promise<number[]> {
  const dims = embeddings.counts?.dims ?? 0;
  const [a, p] = await Promise.all([readMatrix((await b.store.file(embeddings)), dims), readMatrix(pythonOut, dims)]);
  if (a.rows !== p.rows) throw new Error(`twinflow wrote ${a.rows} rows but Python ${p.rows}; both should embed the ${IMAGES} images`);
  return Array.from({ length: a.rows }, (_, i) => cosine(row(a, i), row(p, i))).sort((x, y) => x - y);
}

/** Runs the bench; returns the lines to print. */
export async function embedBench(): Promise<string[]> {
  const b = await setUp();
  try {
    const pythonOut = path.join(b.root, 'python.f32');
    const times = { twinflow: [] as number[], python: [] as number[], pySession: [] as number[], pyRun: [] as number[], nodeSession: [] as number[] };
    let last: ArtifactRef | undefined;
    for (let rep = 0; rep <= REPS; rep++) {
      // Alternating sides, so load from other people on the machine hits both alike.
      const tw = await runTwinflow(b, rep);
      const py = runPython(b, pythonOut);
      last = tw.embeddings;
      if (rep === 0) continue; // warm-up: page cache, lazy library loading
      times.twinflow.push(tw.seconds);
      times.python.push(py.seconds);
      times.pySession.push(py.session_seconds);
      times.pyRun.push(py.run_seconds);
      times.nodeSession.push(await nodeSessionSeconds(b.threads));
    }
    const cos = await compareRows(b, last!, pythonOut);
    const tw = IMAGES / median(times.twinflow);
    const py = IMAGES / median(times.python);
    const runs = (xs: number[]) => xs.map((s) => s.toFixed(2)).join('/');
    return [
      `embed throughput: ${IMAGES} JPEGs (<= ${MAX_SIDE} px) through ${DEFAULT_EMBED_MODEL}, batch ${BATCH}, ${b.threads} intra-op threads; ` +
        `medians of ${REPS} alternating runs after a warm-up, session creation included on both sides`,
      `  twinflow embed/images (sharp + onnxruntime-node ${ort.env.versions.common})  ${tw.toFixed(1)} images/s  (runs ${runs(times.twinflow)} s; session alone ${median(times.nodeSession).toFixed(2)} s)`,
      `  onnxruntime-python + PIL                         ${py.toFixed(1)} images/s  (runs ${runs(times.python)} s; session alone ${median(times.pySession).toFixed(2)} s)`,
      `  inference alone (python's session.run calls) ${(IMAGES / median(times.pyRun)).toFixed(1)} images/s (decoding excluded; onnxruntime 1.32 there)`,
      `  ratio twinflow / python ${(tw / py).toFixed(3)}x (target >= 1.0x)`,
      `  cosine twinflow vs python per image: min ${cos[0]!.toFixed(4)}, median ${median(cos).toFixed(4)} (expected > 0.99)`,
    ];
  } finally {
    await fs.rm(b.root, { recursive: true, force: true });
  }
}
