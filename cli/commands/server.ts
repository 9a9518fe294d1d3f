import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { homeLayout } from '../../activities/home.js';
import { bundleWorkflows, createWorkers, runWorkers } from '../../worker.js';
import { connect } from '../client.js';
import { freePort, portInUse, startDevServer, type DevServer } from '../dev-server.js';
import { renderRun } from '../render.js';
import { submitPipeline } from '../submit.js';
import { watchRun } from '../watch.js';
import { compileOrExit } from './validate.js';

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
  process.env.TEMPORAL_ADDRESS = server.address;
  try {
    (await connect({ address: server.address, waitMs: 30_000 })).close();
    const connection = await NativeConnection.connect({ address: server.address });
    const workers = await createWorkers({ connection, home, workflowBundle: await bundleWorkflows(), queues: ['cpu'] });
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

export async function devCommand(opts: { port: number; uiPort?: number; headless?: boolean }): Promise<void> {
  const embedded = await startEmbedded(opts);
  const { server } = embedded;
  console.log(`Temporal dev server: ${server.address}  (state in ${homeLayout().root}/temporal.sqlite)`);
  if (server.uiUrl) console.log(`Web UI:              ${server.uiUrl}`);
  console.log(`Worker:              queues cpu + workflows, pid ${process.pid}`);
  console.log(`In another terminal: export TEMPORAL_ADDRESS=${server.address}; npx twinflow run pipelines/example.yaml --wait`);
  console.log('Ctrl-C stops the worker, then the server.');
  // The Temporal runtime shuts workers down on SIGINT/SIGTERM; then the server follows.
  await embedded.running.catch((err: unknown) => console.error(`worker stopped: ${(err as Error).message}`));
  await embedded.stop();
  console.log('stopped');
}

/** `npm start`: the example pipeline end to end on a fresh embedded server, then once more to show the cache. */
export async function demoCommand(file: string, opts: { port?: number; runs: number }): Promise<void> {
  const pipeline = compileOrExit(file);
  const port = opts.port ?? ((await portInUse(7233)) ? await freePort() : 7233);
  const embedded = await startEmbedded({ port, uiPort: await freePort(), headless: false });
  console.log(`embedded Temporal at ${embedded.server.address}; Web UI at ${embedded.server.uiUrl}`);
  try {
    const session = await connect({ address: embedded.server.address });
    try {
      for (let i = 1; i <= opts.runs; i++) {
        const runId = await submitPipeline(session, pipeline);
        console.log(`\nrun ${i}/${opts.runs}: ${runId}`);
        const run = await watchRun(session, runId);
        if (!process.stdout.isTTY) console.log(renderRun(run));
        if (run.state !== 'succeeded') {
          process.exitCode = 1;
          console.error(`run ${runId} ended ${run.state}`);
          return;
        }
        const cached = run.order.filter((id) => run.stages[id]!.state === 'cached').length;
        console.log(`run ${i}: ${run.state}; ${cached} of ${run.order.length} stages came from the cache`);
      }
    } finally {
      await session.close();
    }
  } finally {
    await embedded.stop();
  }
}
