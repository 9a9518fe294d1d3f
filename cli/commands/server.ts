import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { homeLayout } from '../../activities/home.js';
import { artifactRefSchema } from '../../engine/kinds/artifact.js';
import { describePolicy, decisionPolicySchema } from '../../engine/kinds/review.js';
import { reviewMode, waitsForPeople } from '../../engine/people.js';
import type { CompiledPipeline } from '../../engine/types.js';
import type { RunStatus } from '../../workflows/messages.js';
import { bundleWorkflows, createWorkers, runWorkers } from '../../worker.js';
import { connect } from '../client.js';
import { freePort, portInUse, startDevServer, type DevServer } from '../dev-server.js';
import { renderRun } from '../render.js';
import { submitPipeline } from '../submit.js';
import { watchRun } from '../watch.js';
import { compileOrExit } from './validate.js';
import type { ReviewServer } from '../../review/server.js';

interface Embedded {
  server: DevServer;
  connection: NativeConnection;
  workers: Awaited<ReturnType<typeof createWorkers>>;
  running: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the dev server (SQLite under $TWINFLOW_HOME) and a worker for cpu stages in this process. */
async function startEmbedded(opts: { port: number; uiPort?: number; headless?: boolean; quiet?: boolean }): Promise<Embedded> {
  const home = homeLayout();
  // Worker state changes at INFO would bury the stage table; warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger(process.env.TWINFLOW_LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN') });
  const server = await startDevServer({
    port: opts.port,
    uiPort: opts.uiPort,
    headless: opts.headless,
    dbFile: path.join(home.root, 'temporal.sqlite'),
    logFile: path.join(home.root, 'temporal-server.log'),
  });
  // This process's commands and worker talk to the server it started: its namespace, in plaintext,
  // whatever namespace or TLS a temporal.toml profile holds for a cluster.
  Object.assign(process.env, { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TLS: 'false' });
  try {
    (await connect({ address: server.address, waitMs: 30_000 })).close();
    const connection = await NativeConnection.connect({ address: server.address });
    const workers = await createWorkers({ connection, namespace: 'default', home, workflowBundle: await bundleWorkflows(), queues: ['cpu'] });
    const running = runWorkers(workers);
    const stop = async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => undefined);
      await connection.close();
      await server.stop();
    };
    return { server, connection, workers, running, stop };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

export async function devCommand(opts: { port: number; uiPort?: number; headless?: boolean; reviewPort?: number; review: boolean }): Promise<void> {
  const embedded = await startEmbedded(opts);
  const { server } = embedded;
  const page = opts.review ? await openReviewPage(server.address, opts.reviewPort) : undefined;
  console.log(`Temporal dev server: ${server.address}  (state in ${homeLayout().root}/temporal.sqlite)`);
  if (server.uiUrl) console.log(`Web UI:              ${server.uiUrl}`);
  if (page) console.log(`Review page:         ${page.url}  (reviews and approvals waiting for people)`);
  console.log(`Worker:              queues cpu + workflows, pid ${process.pid}`);
  console.log(`In another terminal: export TEMPORAL_ADDRESS=${server.address}; npx twinflow run pipelines/example.yaml --wait`);
  console.log('Ctrl-C stops the worker, then the server.');
  // The Temporal runtime shuts workers down on SIGINT/SIGTERM; then the server follows.
  await embedded.running.catch((err: unknown) => console.error(`worker stopped: ${(err as Error).message}`));
  await page?.close();
  await embedded.stop();
  console.log('stopped');
}

/** The review page beside the embedded server: on 7300 (or the port asked for), else a free port. */
async function openReviewPage(address: string, port?: number): Promise<ReviewServer & { close(): Promise<void> }> {
  const session = await connect({ address });
  const chosen = port ?? ((await portInUse(7300)) ? await freePort() : 7300);
  const { startReviewPage } = await import('./review-page.js');
  const page = await startReviewPage(session, { host: '127.0.0.1', port: chosen });
  return { ...page, close: async () => { await page.close(); await session.close(); } };
}

/** `npm start`: a pipeline end to end on a fresh embedded server, then once more to show the cache. */
export async function demoCommand(file: string, opts: { port?: number; runs: number; set: Record<string, string> }): Promise<void> {
  const pipeline = compileOrExit(file, opts.set);
  const port = opts.port ?? ((await portInUse(7233)) ? await freePort() : 7233);
  const embedded = await startEmbedded({ port, uiPort: await freePort(), headless: false });
  console.log(`embedded Temporal at ${embedded.server.address}; Web UI at ${embedded.server.uiUrl}`);
  printPolicies(pipeline);
  const people = pipeline.order.some((id) => waitsForPeople(pipeline.stages[id]!, pipeline.params));
  const page = people ? await openReviewPage(embedded.server.address).catch(async (err) => { await embedded.stop(); throw err; }) : undefined;
  try {
    const session = await connect({ address: embedded.server.address });
    try {
      let last: RunStatus | undefined;
      for (let i = 1; i <= opts.runs; i++) {
        const runId = await submitPipeline(session, pipeline);
        console.log(`\nrun ${i}/${opts.runs}: ${runId}`);
        if (page) {
          console.log(`people decide on the review page: ${page.url}  (the run goes on once every item is decided)`);
          console.log(`  or in a terminal: TEMPORAL_ADDRESS=${embedded.server.address} npx twinflow status ${runId}`);
        }
        // Ctrl-C: the Temporal runtime stops the worker; stop following and shut the server down too.
        const interrupted = embedded.running.then(() => undefined, () => undefined);
        const run = await Promise.race([watchRun(session, runId), interrupted]);
        if (!run) {
          process.exitCode = 130;
          console.error(`\ninterrupted; run ${runId} is kept in ${homeLayout().root}/temporal.sqlite: \`npx twinflow dev\` picks it up again`);
          return;
        }
        if (!process.stdout.isTTY) console.log(renderRun(run));
        if (run.state !== 'succeeded') {
          process.exitCode = 1;
          console.error(`run ${runId} ended ${run.state}`);
          return;
        }
        const cached = run.order.filter((id) => run.stages[id]!.state === 'cached').length;
        console.log(`run ${i}: ${run.state}; ${cached} of ${run.order.length} stages came from the cache`);
        last = run;
      }
      if (last) printWhereThingsAre(last, embedded.server.uiUrl);
    } finally {
      await session.close();
    }
  } finally {
    await page?.close();
    await embedded.stop();
  }
}

/** Automatic decisions are announced before anything runs: nobody should mistake them for people's. */
function printPolicies(pipeline: CompiledPipeline): void {
  const decided = pipeline.order.filter((id) => {
    const stage = pipeline.stages[id]!;
    return stage.uses === 'core/decide' || (stage.uses === 'core/review' && reviewMode(stage, pipeline.params) === 'policy');
  });
  if (decided.length === 0) return;
  console.log('\nautomatic decisions in this pipeline (no person is asked):');
  for (const id of decided) {
    const policy = (pipeline.stages[id]!.with as { policy?: unknown }).policy;
    const parsed = decisionPolicySchema.safeParse(policy);
    const text = parsed.success ? describePolicy(parsed.data) : 'its policy comes from an expression: see the stage outputs';
    console.log(`  ${id}: ${text}`);
  }
}

/** The end of the demo: where the dataset, its report and the run's history are. */
function printWhereThingsAre(run: RunStatus, uiUrl: string | undefined): void {
  const lines: string[] = [];
  for (const id of run.order) {
    const outputs = run.stages[id]!.outputs ?? {};
    if (typeof outputs.dataset !== 'string') continue;
    lines.push(`dataset (${id}):  ${outputs.dataset}`);
    // The stats report and figure sit in the dataset folder; the store keeps a copy of each file too.
    const files = (outputs.files ?? {}) as Record<string, unknown>;
    for (const [name, ref] of Object.entries(files)) {
      const parsed = artifactRefSchema.safeParse(ref);
      if (parsed.success && /stats|\.svg$/.test(name)) lines.push(`  ${name.padEnd(28)} ${path.join(outputs.dataset, name)}`);
    }
  }
  console.log(`\n${lines.join('\n')}`);
  console.log(`Temporal Web UI:  ${uiUrl ?? '(headless)'}/namespaces/default/workflows/${encodeURIComponent(run.runId)}`);
  console.log('  (this server stops with the demo; `npx twinflow dev` serves the same history from $TWINFLOW_HOME again)');
}
