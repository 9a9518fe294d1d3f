/**
 * Bench (c): embedding throughput. twinflow's embed/images (sharp decoding + onnxruntime-node,
 * the real activity) against onnxruntime-python + PIL doing the same work on the same ONNX
 * file and the same JPEGs, same batch size and threads; session creation is outside both
 * timings. Medians of alternating runs after a warm-up; rows compared by cosine.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ArtifactStore } from '../activities/artifact-store.js';
import { createEmbedImages } from '../activities/embed/embed-images.js';
import { cosine, readMatrix, row } from '../activities/embed/matrix.js';
import { homeLayout } from '../activities/home.js';
import type { StageActivityInput, StageActivityResult } from '../activities/stage-io.js';
import { DEFAULT_EMBED_MODEL, preprocessPathFor } from '../engine/kinds/embed.js';
import type { ArtifactRef, JsonObject } from '../engine/types.js';

const IMAGES = Number(process.env.BENCH_EMBED_IMAGES ?? 240);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const BATCH = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Seeded crops and resizes of the demo photos, as prepared images are (<= 512 px, JPEG). */
async function imageSet(dir: string): Promise<string[]> {
  const sources: string[] = [];
  for (const f of await fs.readdir('data/demo/images', { recursive: true })) {
    const file = path.join('data/demo/images', f);
    // The demo keeps a few broken files on purpose (for quarantine); only whole images count here.
    if ((await fs.stat(file)).isFile() && (await sharp(file, { failOn: 'truncated' }).raw().toBuffer({ resolveWithObject: true }).then(({ info }) => info.width > 16, () => false))) sources.push(file);
  }
  if (sources.length === 0) throw new Error('no demo images: run `npm run setup` first (it builds data/demo/)');
  const files: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const src = sources[i % sources.length]!;
    const meta = await sharp(src).metadata();
    const k = Math.floor(i / sources.length);
    const w = Math.max(32, Math.floor(meta.width! * (1 - 0.05 * (k % 5))));
    const h = Math.max(32, Math.floor(meta.height! * (1 - 0.04 * (k % 4))));
    const out = path.join(dir, `${String(i).padStart(4, '0')}.jpg`);
    await sharp(src).extract({ left: 0, top: 0, width: Math.min(w, meta.width!), height: Math.min(h, meta.height!) })
      .resize(512 - 24 * (k % 8), 512 - 24 * (k % 8), { fit: 'inside' }).jpeg({ quality: 90 }).toFile(out);
    files.push(out);
  }
  return files;
}

export async function embedBench(): Promise<string[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-embed-'));
  try {
    const files = await imageSet(await fs.mkdir(path.join(root, 'images'), { recursive: true }).then(() => path.join(root, 'images')));
    const home = homeLayout(path.join(root, 'home'));
    const store = new ArtifactStore(home.artifactsDir);
    const rows = files.map((f, i) => ({ instance_id: `I${i}`, asins: [`I${i}`], title: '', category: 'x', images: [{ path: path.resolve(f), role: 'listing' }] }));
    const manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const threads = os.availableParallelism();
    const embed = createEmbedImages({ store, home });
    const twinflow = async (rep: number) => {
      const input: StageActivityInput = { runId: 'bench', stageId: `embed-${rep}`, uses: 'embed/images', kindVersion: '1', with: { instances: manifest, batchSize: BATCH, threads } as unknown as JsonObject, shellEnv: {} };
      const t = performance.now();
      const result = (await new MockActivityEnvironment({ attempt: 1 }).run(embed, input)) as StageActivityResult;
      return { seconds: (performance.now() - t) / 1000, embeddings: (result.outputs as unknown as { embeddings: ArtifactRef }).embeddings };
    };
    const list = path.join(root, 'list.txt');
    await fs.writeFile(list, files.map((f) => path.resolve(f)).join('\n'));
    const pyOut = path.join(root, 'python.f32');
    const python = () => JSON.parse(execFileSync('.venv/bin/python', ['bench/python/embed_baseline.py', DEFAULT_EMBED_MODEL, preprocessPathFor(DEFAULT_EMBED_MODEL), list, pyOut, String(BATCH), String(threads)], { encoding: 'utf8' })) as { seconds: number };
    const times = { twinflow: [] as number[], python: [] as number[] };
    let last: ArtifactRef | undefined;
    for (let rep = 0; rep <= REPS; rep++) {
      const tw = await twinflow(rep);
      const py = python();
      last = tw.embeddings;
      if (rep === 0) continue;
      times.twinflow.push(tw.seconds);
      times.python.push(py.seconds);
    }
    const dims = last!.counts?.dims ?? 1792;
    const a = await readMatrix(store.resolve(last!), dims);
    const b = await readMatrix(pyOut, dims);
    const cos = Array.from({ length: a.rows }, (_, i) => cosine(row(a, i), row(b, i))).sort((x, y) => x - y);
    const tw = IMAGES / median(times.twinflow);
    const py = IMAGES / median(times.python);
    return [
      `${IMAGES} JPEGs (<= 512 px) through ${DEFAULT_EMBED_MODEL}, batch ${BATCH}, ${threads} threads, medians of ${REPS}`,
      `twinflow (sharp + onnxruntime-node)   ${tw.toFixed(1)} images/s`,
      `onnxruntime-python + PIL              ${py.toFixed(1)} images/s`,
      `throughput ratio ${(tw / py).toFixed(3)}x (target >= 1.0x); cosine between the two sides' rows: min ${cos[0]!.toFixed(4)}, median ${median(cos).toFixed(4)} (resampling kernels differ)`,
    ];
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}
