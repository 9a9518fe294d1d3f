#!/usr/bin/env -S npx tsx
/**
 * A twinflow worker. Run one per host:
 *   tsx worker.ts                      # interpreter workflows + the cpu queue
 *   tsx worker.ts --queue gpu --no-workflows --gpus 8   # a GPU host lending 8 GPUs to stages
 * It connects to TEMPORAL_ADDRESS (default 127.0.0.1:7233) in TEMPORAL_NAMESPACE.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from './activities/index.js';
import { homeLayout, type HomeLayout } from './activities/home.js';
import { GpuPool, gpuDevices } from './activities/gpu-pool.js';
import { activityQueue, CONTROL_QUEUE, LEGACY_CONTROL_QUEUE } from './workflows/messages.js';
import { describeSettings, temporalNamespace, workerIdentity } from './cli/connection.js';
import { connectWorker } from './cli/client.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface WorkerSetup {
  connection: NativeConnection;
  namespace?: string;
  /** Queues whose stages this worker runs. @default ['cpu'] */
  queues?: string[];
  /** Most stage activities at once, per queue. @default `gpus` when set (one stage per device), else 4 */
  concurrency?: number;
  /**
   * GPUs this host lends to stages that ask for them (`resources.gpus`): each stage holds
   * its own devices while it runs and sees only them as CUDA_VISIBLE_DEVICES; a stage that
   * asks for none sees none. @default none advertised: GPUs are not managed
   */
  gpus?: number;
  /** Also run interpreter workflows (one host or more must). @default true */
  workflows?: boolean;
  home?: HomeLayout;
  /** A prebuilt workflow bundle; saves the seconds webpack takes at each start. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  identity?: string;
}

/** Bundles the interpreter once; tests and `twinflow dev` reuse the result. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: path.join(here, 'workflows', 'index.ts'), logger: quietBundlerLogger });
}

/**
 * One Temporal worker per task queue this host serves. Interpreter workflows poll
 * CONTROL_QUEUE, the cpu stages' queue: on a host that also serves cpu they share one
 * worker with the cpu stages, so Temporal hands it each cpu stage with the workflow task
 * that scheduled it (see CONTROL_QUEUE). LEGACY_CONTROL_QUEUE is polled for runs started
 * before workflows moved there.
 */
export async function createWorkers(setup: WorkerSetup): Promise<Worker[]> {
  const gpus = setup.gpus === undefined ? undefined : new GpuPool(gpuDevices(setup.gpus));
  const activities = createActivities({ home: setup.home ?? homeLayout(), ...(gpus ? { gpus } : {}) });
  const common = {
    connection: setup.connection,
    namespace: setup.namespace ?? temporalNamespace(),
    ...(setup.identity ? { identity: setup.identity } : {}),
    // Cancellation reaches an activity only with a heartbeat response; keep that quick.
    maxHeartbeatThrottleInterval: '2 seconds',
    shutdownGraceTime: '10 seconds',
  } as const;
  // Bundled once here, not by each worker: two of them run workflows.
  const workflows = (setup.workflows ?? true) ? { workflowBundle: setup.workflowBundle ?? (await bundleWorkflows()) } : undefined;
  const queues = [...new Set((setup.queues ?? ['cpu']).map(activityQueue))];
  const interpreterOnly = { activities: { lookupCache: activities.lookupCache }, enableNonLocalActivities: false } as const;
  const options: WorkerOptions[] = queues.map((taskQueue) => ({
    ...common,
    taskQueue,
    activities,
    maxConcurrentActivityTaskExecutions: setup.concurrency ?? setup.gpus ?? 4,
    ...(taskQueue === CONTROL_QUEUE ? workflows : {}),
  }));
  if (workflows) {
    if (!queues.includes(CONTROL_QUEUE)) options.push({ ...common, taskQueue: CONTROL_QUEUE, ...workflows, ...interpreterOnly });
    options.push({ ...common, taskQueue: LEGACY_CONTROL_QUEUE, ...workflows, ...interpreterOnly });
  }
  const workers: Worker[] = [];
  for (const o of options) workers.push(await Worker.create(o));
  return workers;
}

/** Runs workers until one fails or they are shut down (SIGINT/SIGTERM shut them down). */
export async function runWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.run()));
}

const quietBundlerLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (message: string) => console.warn(message), error: (message: string) => console.error(message),
};

async function main(argv: string[]): Promise<void> {
  const program = new Command('worker.ts')
    .description('Run twinflow stages (and interpreter workflows) on this host.')
    .option('--queue <name...>', 'queues to serve (cpu, gpu or any name)', ['cpu'])
    .option('--concurrency <n>', 'most stage activities at once per queue (default: --gpus N when given, else 4)', positiveInt)
    .option('--gpus <n>', 'GPUs to lend to stages asking for them (resources.gpus); each sees its own as CUDA_VISIBLE_DEVICES', positiveInt)
    .option('--no-workflows', 'do not run interpreter workflows on this host')
    .parse(argv);
  const opts = program.opts<{ queue: string[]; concurrency?: number; gpus?: number; workflows: boolean }>();
  const { settings, connection } = await connectWorker((options) => NativeConnection.connect(options));
  const address = describeSettings(settings);
  const identity = workerIdentity(opts.queue, opts.workflows);
  const { concurrency, gpus, workflows } = opts;
  const workers = await createWorkers({ connection, queues: opts.queue, workflows, identity, ...(concurrency ? { concurrency } : {}), ...(gpus ? { gpus } : {}) });
  const lent = gpus ? `, ${gpus} GPU${gpus === 1 ? '' : 's'}` : '';
  console.log(`twinflow worker on ${address}: queues ${opts.queue.join(', ')}${workflows ? ' + workflows' : ''}${lent} (pid ${process.pid})`);
  try {
    await runWorkers(workers);
  } finally {
    await connection.close();
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv).catch((err: unknown) => {
    console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
