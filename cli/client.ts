import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { CliError } from './errors.js';
import { temporalAddress, temporalNamespace } from './connection.js';
import type { pipelineWorkflow } from '../workflows/pipeline.js';

export type RunHandle = WorkflowHandle<typeof pipelineWorkflow>;

export interface Session {
  client: Client;
  address: string;
  close(): Promise<void>;
}

/** Connects to Temporal, waiting up to `waitMs` for a server that is still starting. */
export async function connect(opts: { address?: string; waitMs?: number } = {}): Promise<Session> {
  const address = opts.address ?? temporalAddress();
  const deadline = Date.now() + (opts.waitMs ?? 5_000);
  let lastError: unknown;
  do {
    try {
      const connection = await Connection.connect({ address, connectTimeout: '3 seconds' });
      const client = new Client({ connection, namespace: temporalNamespace() });
      await connection.withDeadline(Date.now() + 5_000, () => connection.workflowService.getSystemInfo({}));
      return { client, address, close: () => connection.close() };
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 300));
    }
  } while (Date.now() < deadline);
  throw new CliError(
    `cannot reach Temporal at ${address} (${(lastError as Error)?.message ?? 'no answer'})`,
    'start the embedded server with `npx twinflow dev`, or set TEMPORAL_ADDRESS to your cluster',
  );
}

/** A run's handle, with a clear error when the id is unknown. */
export async function runHandle(session: Session, runId: string): Promise<RunHandle> {
  const handle = session.client.workflow.getHandle<typeof pipelineWorkflow>(runId);
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(`no run with id ${runId}`, 'list runs with `npx twinflow list`', 2);
    }
    throw err;
  }
  return handle;
}
