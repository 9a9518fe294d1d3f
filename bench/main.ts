/**
 * Benchmarks, run with `npm run bench -- <suite>`; each reports a ratio against a
 * baseline run side by side in the same process on the same server.
 *
 *   engine   200 no-op stages (a chain, then a wide fan-out): twinflow's interpreter vs a
 *            hand-written Temporal workflow calling the same activity. Target: <= 1.15x.
 *   twin     (a) shortlist top-k on 22,157 x 512 unit vectors vs faiss-cpu IndexFlatIP and
 *            numpy; (b) assembling and writing a Twin-scale set vs a pyarrow script, with
 *            peak RSS; (c) embedding throughput vs onnxruntime-python + PIL. The Python
 *            baselines run from .venv (bench/python/requirements.txt, installed on first use).
 *            Pick parts with `npm run bench -- twin:topk twin:assemble twin:embed`.
 *   eval     (a) fgvqa/predict against a fixed 200 ms endpoint, 2,000 queries at concurrency 32,
 *            vs the ideal 160 queries/s (target >= 0.9); (b) the time to score 12,000 predictions.
 *   images   images/prepare's peak RSS on long and large images, and its memory estimate vs the
 *            measured peak (target: never below); see bench/images-bench.ts. Linux only.
 *   store    1 GB of artifacts (one file; ~10,000 files of 100 KB) up and down through ArtifactStore
 *            on S3 (s3proxy) vs the AWS CLI's cp and sync (target <= 1.0x); BENCH_STORE_MB sizes it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { homeLayout } from '../activities/home.js';
import { freePort, startDevServer } from '../cli/dev-server.js';
import { submitPipeline } from '../cli/submit.js';
import { checkPipelineText } from '../engine/compile.js';
import { activityQueue } from '../workflows/pipeline.js';
import { bundleWorkflows, createWorkers } from '../worker.js';

const STAGES = 200;
const REPS = Number(process.env.BENCH_REPS ?? 3);

function pipelineYaml(shape: 'chain' | 'wide'): string {
  const lines = [`name: bench-${shape}`, `concurrency: ${STAGES}`, 'stages:'];
  for (let i = 0; i < STAGES; i++) {
    const needs = shape === 'chain' && i > 0 ? `needs: [s${i - 1}], ` : '';
    lines.push(`  s${i}: { uses: core/noop, ${needs}retry: { attempts: 1 } }`);
  }
  return lines.join('\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function engineSuite(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-'));
  const port = await freePort();
  const server = await startDevServer({ port, headless: true, dbFile: path.join(root, 'temporal.sqlite'), logFile: path.join(root, 'server.log') });
  const native = await NativeConnection.connect({ address: server.address });
  const home = homeLayout(root);
  const workers = await createWorkers({ connection: native, home, workflowBundle: await bundleWorkflows(), queues: ['cpu'], concurrency: 64 });
  const baselineWorker = await Worker.create({
    connection: native,
    taskQueue: 'bench-baseline',
    workflowBundle: await bundleWorkflowCode({ workflowsPath: path.join(import.meta.dirname, 'workflows', 'baseline.ts'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error } }),
    activities: createActivities({ home }),
  });
  const running = Promise.all([...workers, baselineWorker].map((w) => w.run()));
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const session = { client, address: server.address, close: async () => undefined };
  console.log(`engine: ${STAGES} no-op stages, ${REPS} alternating repetitions, dev server ${server.address}\n`);
  const rows: string[] = [];
  try {
    for (const shape of ['chain', 'wide'] as const) {
      const { pipeline } = checkPipelineText(pipelineYaml(shape), `bench-${shape}.yaml`, {});
      const times = { twinflow: [] as number[], baseline: [] as number[] };
      for (let rep = 0; rep <= REPS; rep++) {
        let t = performance.now();
        const runId = await submitPipeline(session, pipeline!);
        const status = await client.workflow.getHandle(runId).result();
        if ((status as { state: string }).state !== 'succeeded') throw new Error(`twinflow run ${runId} ended ${(status as { state: string }).state}`);
        const twinflowMs = performance.now() - t;
        t = performance.now();
        await client.workflow.execute('baselineWorkflow', { taskQueue: 'bench-baseline', workflowId: `baseline-${shape}-${rep}-${Date.now()}`, args: [shape, STAGES, activityQueue('cpu')] });
        const baselineMs = performance.now() - t;
        if (rep === 0) continue; // warm-up: caches, sticky queues, JIT
        times.twinflow.push(twinflowMs);
        times.baseline.push(baselineMs);
        console.log(`  ${shape} rep ${rep}: twinflow ${twinflowMs.toFixed(0)} ms, hand-written ${baselineMs.toFixed(0)} ms`);
      }
      const tw = median(times.twinflow);
      const bl = median(times.baseline);
      rows.push(`${shape.padEnd(6)} twinflow ${tw.toFixed(0).padStart(6)} ms   hand-written ${bl.toFixed(0).padStart(6)} ms   ratio ${(tw / bl).toFixed(3)}x   (target <= 1.15x)`);
    }
    console.log(`\nmedians over ${REPS} repetitions:\n${rows.join('\n')}`);
  } finally {
    for (const w of [...workers, baselineWorker]) w.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await native.close();
    await server.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}

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

const suites: Record<string, () => Promise<void>> = {
  engine: engineSuite,
  eval: async () => {
    console.log('\neval: the FGVQA predict client and scoring');
    console.log((await (await import('./fgvqa-eval.js')).evalBench()).map((l) => `  ${l}`).join('\n'));
  },
  images: async () => console.log((await (await import('./images-bench.js')).imagesBench()).map((l) => `  ${l}`).join('\n')),
  store: async () => console.log((await (await import('./store.js')).storeBench()).map((l) => `  ${l}`).join('\n')),
  ...twinParts,
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
