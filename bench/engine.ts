/**
 * `npm run bench -- engine`: what the interpreter costs per stage, against hand-written
 * Temporal workflows calling the same no-op activity on the same server, in one process.
 *
 *   chain  200 stages one after another, in ms per stage: twinflow beside (a) a hand-written
 *          workflow whose activities run on another task queue (as twinflow's did until
 *          workflows moved to the cpu queue) and (b) the floor, a hand-written workflow whose
 *          activities run on its own task queue, so the server dispatches them eagerly.
 *          Target: twinflow <= 1.3x the floor. Also the chain with `cache: true` (a
 *          lookupCache local activity before each stage; misses, then hits).
 *   wide   200 stages at once: twinflow vs the hand-written workflow. Target: <= 1.15x.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { homeLayout } from '../activities/home.js';
import { freePort, startDevServer } from '../cli/dev-server.js';
import type { Session } from '../cli/client.js';
import { submitPipeline } from '../cli/submit.js';
import { checkPipelineText } from '../engine/compile.js';
import type { CompiledPipeline } from '../engine/types.js';
import { activityQueue } from '../workflows/messages.js';
import { bundleWorkflows, createWorkers } from '../worker.js';

const STAGES = 200;
const REPS = Number(process.env.BENCH_REPS ?? 3);
const BASELINE_QUEUE = 'bench-baseline';

type Shape = 'chain' | 'wide';

/** 200 no-op stages; `cache` makes each cacheable, with inputs that differ per stage and per `rep`, so the first run of a rep misses. */
function pipelineYaml(shape: Shape, cache = false): string {
  const lines = [`name: bench-${shape}${cache ? '-cached' : ''}`, `concurrency: ${STAGES}`, 'params: { rep: 0 }', 'stages:'];
  for (let i = 0; i < STAGES; i++) {
    const needs = shape === 'chain' && i > 0 ? `needs: [s${i - 1}], ` : '';
    // Cache keys leave the stage id out: inputs that differ by stage keep stages from hitting each other.
    const cached = cache ? `cache: true, with: { outputs: { rep: "\${{ params.rep }}", stage: ${i} } }, ` : '';
    lines.push(`  s${i}: { uses: core/noop, ${needs}${cached}retry: { attempts: 1 } }`);
  }
  return lines.join('\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Bench {
  client: Client;
  session: Session;
  compile(shape: Shape, cache?: boolean, rep?: number): CompiledPipeline;
}

async function timeTwinflow(b: Bench, pipeline: CompiledPipeline): Promise<number> {
  const t = performance.now();
  const runId = await submitPipeline(b.session, pipeline);
  const status = (await b.client.workflow.getHandle(runId).result()) as { state: string };
  if (status.state !== 'succeeded') throw new Error(`twinflow run ${runId} ended ${status.state}`);
  return performance.now() - t;
}

async function timeBaseline(b: Bench, shape: Shape, activityTaskQueue: string): Promise<number> {
  const t = performance.now();
  const workflowId = `baseline-${shape}-${activityTaskQueue}-${Date.now()}`;
  await b.client.workflow.execute('baselineWorkflow', { taskQueue: BASELINE_QUEUE, workflowId, args: [shape, STAGES, activityTaskQueue] });
  return performance.now() - t;
}

/** Each contender once per repetition, in turn, after one warm-up round (caches, sticky queues, JIT). */
async function alternate(contenders: Record<string, (rep: number) => Promise<number>>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = {};
  for (let rep = 0; rep <= REPS; rep++) {
    const line: string[] = [];
    for (const [name, run] of Object.entries(contenders)) {
      const ms = await run(rep);
      if (rep === 0) continue;
      (times[name] ??= []).push(ms);
      line.push(`${name} ${ms.toFixed(0)} ms`);
    }
    if (rep > 0) console.log(`  rep ${rep}: ${line.join(', ')}`);
  }
  return Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, median(xs)]));
}

async function chainRows(b: Bench): Promise<string[]> {
  console.log('chain');
  const m = await alternate({
    floor: () => timeBaseline(b, 'chain', BASELINE_QUEUE),
    'cross-queue': () => timeBaseline(b, 'chain', activityQueue('cpu')),
    twinflow: () => timeTwinflow(b, b.compile('chain')),
    'cache miss': (rep) => timeTwinflow(b, b.compile('chain', true, rep)),
    'cache hit': (rep) => timeTwinflow(b, b.compile('chain', true, rep)),
  });
  const per = (name: string) => m[name]! / STAGES;
  const row = (label: string, name: string, note = '') =>
    `${label.padEnd(48)} ${per(name).toFixed(1).padStart(6)} ms/stage   ${(per(name) / per('floor')).toFixed(2)}x floor${note}`;
  return [
    `chain of ${STAGES} no-op stages, medians of ${REPS}:`,
    row('  floor: hand-written, activities on its queue', 'floor'),
    row('  hand-written, activities on another queue', 'cross-queue'),
    row('  twinflow', 'twinflow', '   (target <= 1.30x)'),
    row('  twinflow, cache: true, every stage a miss', 'cache miss', '   (lookup + cache write)'),
    row('  twinflow, cache: true, every stage a hit', 'cache hit', '   (lookup only, no activity)'),
  ];
}

async function wideRows(b: Bench): Promise<string[]> {
  console.log('wide');
  const m = await alternate({
    twinflow: () => timeTwinflow(b, b.compile('wide')),
    'hand-written': () => timeBaseline(b, 'wide', activityQueue('cpu')),
  });
  return [`fan-out of ${STAGES} no-op stages: twinflow ${m.twinflow!.toFixed(0)} ms, hand-written ${m['hand-written']!.toFixed(0)} ms, ` +
    `ratio ${(m.twinflow! / m['hand-written']!).toFixed(3)}x   (target <= 1.15x)`];
}

export async function engineSuite(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-'));
  const server = await startDevServer({ port: await freePort(), headless: true, dbFile: path.join(root, 'temporal.sqlite'), logFile: path.join(root, 'server.log') });
  const native = await NativeConnection.connect({ address: server.address });
  const home = homeLayout(root);
  const workers = await createWorkers({ connection: native, home, workflowBundle: await bundleWorkflows(), queues: ['cpu'], concurrency: 64 });
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error };
  workers.push(await Worker.create({
    connection: native,
    taskQueue: BASELINE_QUEUE,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: path.join(import.meta.dirname, 'workflows', 'baseline.ts'), logger: quiet }),
    activities: createActivities({ home }),
  }));
  const running = Promise.all(workers.map((w) => w.run()));
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const compile = (shape: Shape, cache = false, rep = 0) => checkPipelineText(pipelineYaml(shape, cache), `bench-${shape}.yaml`, { set: { rep: String(rep) } }).pipeline!;
  const b: Bench = { client, session: { client, address: server.address, close: async () => undefined }, compile };
  console.log(`engine: ${STAGES} no-op stages, ${REPS} alternating repetitions, dev server ${server.address}\n`);
  try {
    const rows = [...(await chainRows(b)), ...(await wideRows(b))];
    console.log(`\n${rows.join('\n')}`);
  } finally {
    for (const w of workers) w.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await native.close();
    await server.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}
