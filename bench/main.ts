/**
 * Benchmarks, run with `npm run bench -- <suite>`; each reports a ratio against a
 * baseline run side by side in the same process on the same server.
 *
 *   engine   200 no-op stages: a chain in ms per stage, twinflow vs hand-written Temporal
 *            workflows (activities on another task queue; on its own, the floor; target
 *            <= 1.3x the floor), and a wide fan-out (target <= 1.15x); see bench/engine.ts.
 *   twin     (a) shortlist top-k on 22,157 x 512 unit vectors vs faiss-cpu IndexFlatIP and
 *            numpy; (b) assembling and writing a Twin-scale set vs a pyarrow script, with
 *            peak RSS; (c) embedding throughput vs onnxruntime-python + PIL. The Python
 *            baselines run from .venv (bench/python/requirements.txt, installed on first use).
 *            Pick parts with `npm run bench -- twin:topk twin:assemble twin:embed`.
 *   eval     (a) fgvqa/predict against a fixed 200 ms endpoint, 2,000 queries at concurrency 32,
 *            vs the ideal 160 queries/s (target >= 0.9); (b) the time to score 12,000 predictions.
 *   images   images/prepare's peak RSS on long and large images, and its memory estimate vs the
 *            measured peak (target: never below); see bench/images-bench.ts. Linux only.
 *   similarity  the exact searches twin/dedupe and twin/shortlist stand on, vs faiss-cpu: (a) all-pairs
 *            top-20 over 22,157 x 512 (the twin:topk bench; target <= 0.6x, recall 1.0); (b) top-20 within
 *            36 categories (sameCategory; target <= 0.6x); parts similarity:exact, similarity:category.
 *   store    1 GB of artifacts (one file; ~10,000 files of 100 KB) up and down through ArtifactStore
 *            on S3 (s3proxy) vs the AWS CLI's cp and sync (target <= 1.0x); BENCH_STORE_MB sizes it.
 *   probe    (a) probe/encoder's linear probe + kNN on 20,000 x 1,792 features vs scikit-learn
 *            alone on the same files (target <= 1.1x); (b) its feature extraction on CPU beside
 *            embed/images; see bench/probe.ts.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** The Python baselines' packages, installed into .venv once (pip is a no-op when present). */
async function pythonBaselines(): Promise<void> {
  const python = path.resolve('.venv/bin/python');
  try {
    execFileSync(python, ['-c', 'import faiss, numpy, pyarrow, onnxruntime, PIL'], { stdio: 'ignore' });
  } catch {
    console.log('bench: installing the Python baselines into .venv (bench/python/requirements.txt)');
    execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', 'bench/python/requirements.txt'], { stdio: 'inherit' });
  }
}

function twinPart(name: string, load: () => Promise<() => Promise<string[]>>): () => Promise<void> {
  return async () => {
    await pythonBaselines();
    console.log(`\n${name}`);
    const lines = await (await load())();
    console.log(lines.map((l) => `  ${l}`).join('\n'));
  };
}

const twinParts = {
  'twin:topk': twinPart('twin (a): shortlist top-k vs faiss-cpu and numpy', async () => (await import('./twin-topk.js')).topkBench),
  'twin:assemble': twinPart('twin (b): assemble + write a Twin-scale set vs pyarrow', async () => (await import('./twin-assemble.js')).assembleBench),
  'twin:embed': twinPart('twin (c): embedding throughput vs onnxruntime-python + PIL', async () => (await import('./embed-throughput.js')).embedBench),
};

const similarityParts = {
  'similarity:exact': twinPart('similarity (a): exact all-pairs top-20 vs faiss-cpu', async () => (await import('./twin-topk.js')).topkBench),
  'similarity:category': twinPart('similarity (b): top-20 within 36 categories vs faiss-cpu per category', async () => (await import('./similarity-category.js')).categoryBench),
};

const suites: Record<string, () => Promise<void>> = {
  engine: async () => (await import('./engine.js')).engineSuite(),
  eval: async () => {
    console.log('\neval: the FGVQA predict client and scoring');
    console.log((await (await import('./fgvqa-eval.js')).evalBench()).map((l) => `  ${l}`).join('\n'));
  },
  images: async () => console.log((await (await import('./images-bench.js')).imagesBench()).map((l) => `  ${l}`).join('\n')),
  store: async () => console.log((await (await import('./store.js')).storeBench()).map((l) => `  ${l}`).join('\n')),
  probe: async () => console.log((await (await import('./probe.js')).probeBench()).map((l) => `  ${l}`).join('\n')),
  ...twinParts,
  ...similarityParts,
  similarity: async () => {
    for (const part of Object.values(similarityParts)) await part();
  },
  twin: async () => {
    for (const part of Object.values(twinParts)) await part();
  },
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : ['engine', 'twin']) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown bench suite ${name}; suites: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  await suite();
}
