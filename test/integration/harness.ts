import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import { checkPipelineText } from '../../engine/compile.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import type { CompiledPipeline } from '../../engine/types.js';
import { findTemporalBinary } from '../../cli/dev-server.js';
import type { Session } from '../../cli/client.js';
import { submitPipeline } from '../../cli/submit.js';
import { statusQuery, type RunOptions, type RunStatus, SEARCH_ATTRIBUTES } from '../../workflows/messages.js';
import { createWorkers } from '../../worker.js';

export interface Harness {
  env: TestWorkflowEnvironment;
  session: Session;
  home: HomeLayout;
  address: string;
  workers: Worker[];
  compile(yaml: string, set?: Record<string, string>): CompiledPipeline;
  submit(yaml: string, options?: Omit<RunOptions, 'searchAttributes'>): Promise<string>;
  status(runId: string): Promise<RunStatus>;
  waitFor(runId: string, what: string, check: (s: RunStatus) => boolean, timeoutMs?: number): Promise<RunStatus>;
  result(runId: string): Promise<RunStatus>;
  startWorkers(queues?: string[]): Promise<Worker[]>;
  stop(): Promise<void>;
}

export function workflowBundle() {
  return { code: inject('workflowBundleCode'), sourceMap: inject('workflowBundleSourceMap') };
}

/** A real Temporal dev server (from the project's venv), a temporary TWINFLOW_HOME and a cpu worker. */
let runtimeInstalled = false;

/** `workers: false`: only the server (the test starts worker processes of its own). */
export async function startHarness(opts: { queues?: string[]; workers?: boolean } = {}): Promise<Harness> {
  if (!runtimeInstalled) {
    // Worker state changes at INFO drown test output; warnings and errors still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-test-'));
  const home = homeLayout(root);
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: findTemporalBinary() },
      ui: false,
      searchAttributes: Object.values(SEARCH_ATTRIBUTES).map((name) => defineSearchAttributeKey(name, SearchAttributeType.KEYWORD)),
    },
  });
  const address = env.connection.options.address;
  const session: Session = { client: env.client, address, close: async () => undefined };
  const running: Array<{ workers: Worker[]; done: Promise<unknown> }> = [];
  const startWorkers = async (queues = opts.queues ?? ['cpu']) => {
    const workers = await createWorkers({ connection: env.nativeConnection, home, workflowBundle: workflowBundle(), queues });
    running.push({ workers, done: Promise.all(workers.map((w) => w.run())) });
    return workers;
  };
  const workers = opts.workers === false ? [] : await startWorkers();
  const compile = (yaml: string, set: Record<string, string> = {}) => {
    const { pipeline, diagnostics } = checkPipelineText(yaml, 'test.yaml', { set });
    if (!pipeline) throw new Error(`invalid test pipeline:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
    return pipeline;
  };
  const status = (runId: string) => env.client.workflow.getHandle(runId).query(statusQuery);
  const harness: Harness = {
    env, session, home, address, workers, compile, status, startWorkers,
    submit: (yaml, options) => submitPipeline(session, compile(yaml), options),
    async waitFor(runId, what, check, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: RunStatus | undefined;
      while (Date.now() < deadline) {
        last = await status(runId);
        if (check(last)) return last;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(summary(last))}`);
    },
    result: (runId) => env.client.workflow.getHandle(runId).result() as Promise<RunStatus>,
    async stop() {
      for (const r of running) for (const w of r.workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running.map((r) => r.done));
      await env.teardown();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Stage id -> state, for readable failure messages. */
export function summary(s?: RunStatus): Record<string, string> | undefined {
  if (!s) return undefined;
  return Object.fromEntries(Object.entries(s.stages).map(([id, st]) => [id, st.state + (st.error ? ` (${st.error.message.split('\n')[0]})` : '')]));
}

export { isAlive } from '../support/processes.js';
