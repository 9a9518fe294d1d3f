/**
 * Benchmarks, run with `npm run bench -- <suite>`; each reports a ratio against a
 * baseline run side by side in the same process on the same server.
 *
 *   engine   200 no-op stages (a chain, then a wide fan-out): twinflow's interpreter vs a
 *            hand-written Temporal workflow calling the same activity. Target: <= 1.15x.
 */
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

const suites: Record<string, () => Promise<void>> = { engine: engineSuite };
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(suites)) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown bench suite ${name}; suites: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  await suite();
}
