import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { CliError, causeText } from './errors.js';
import { describeSettings, SETTINGS_HINT, temporalSettings, type TemporalSettings } from './connection.js';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { pipelineWorkflow } from '../workflows/pipeline.js';

export type RunHandle = WorkflowHandle<typeof pipelineWorkflow>;

export interface Session {
  client: Client;
  address: string;
  close(): Promise<void>;
}

// gRPC status codes that waiting will not cure.
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const UNAUTHENTICATED = 16;

/**
 * Connects to Temporal with the settings of cli/connection.ts, waiting up to `waitMs` for
 * a server that is still starting. `address` names a server this process started itself.
 */
export async function connect(opts: { address?: string; waitMs?: number } = {}): Promise<Session> {
  const settings = temporalSettings(process.env, { address: opts.address });
  const deadline = Date.now() + (opts.waitMs ?? 5_000);
  let lastError: unknown;
  do {
    try {
      return await tryConnect(settings);
    } catch (err) {
      lastError = err;
      if (err instanceof CliError || [PERMISSION_DENIED, UNAUTHENTICATED].includes(grpcCode(err) ?? -1)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
  } while (Date.now() < deadline);
  throw connectError(settings, lastError);
}

async function tryConnect(settings: TemporalSettings): Promise<Session> {
  const connection = await Connection.connect({ ...settings.connection, connectTimeout: '3 seconds' });
  try {
    const client = new Client({ connection, namespace: settings.namespace });
    await connection.withDeadline(Date.now() + 5_000, () => connection.workflowService.getSystemInfo({}));
    await checkNamespace(client, settings);
    return { client, address: settings.address, close: () => connection.close() };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** A namespace that does not exist would otherwise surface later, inside some other error. */
async function checkNamespace(client: Client, settings: TemporalSettings): Promise<void> {
  try {
    await client.connection.withDeadline(Date.now() + 5_000, () => client.workflowService.describeNamespace({ namespace: settings.namespace }));
  } catch (err) {
    if (grpcCode(err) !== NOT_FOUND) return; // e.g. a key that may use the namespace but not describe it
    throw new CliError(
      `there is no namespace ${settings.namespace} at ${describeSettings(settings)}`,
      'set TEMPORAL_NAMESPACE (or the profile\'s namespace) to one that exists: `temporal operator namespace list`',
    );
  }
}

/** Says which address, namespace and profile were tried, and what to set instead. */
export function connectError(settings: TemporalSettings, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const code = grpcCode(err);
  const refused = code === UNAUTHENTICATED || code === PERMISSION_DENIED;
  return new CliError(
    `${refused ? 'Temporal refused the credentials' : 'cannot reach Temporal'} at ${describeSettings(settings)}: ${causeText(err) || 'no answer'}`,
    refused ? 'check TEMPORAL_API_KEY (or the profile\'s api_key) or the client certificate, and that it may use this namespace' : SETTINGS_HINT,
  );
}

/**
 * worker.ts's connection, opened by `open` (NativeConnection.connect, kept out of the CLI's
 * imports). worker.ts prints only an error's message, so the hint goes into it.
 */
export async function connectWorker<C>(open: (options: NativeConnectionOptions) => Promise<C>): Promise<{ settings: TemporalSettings; connection: C }> {
  try {
    const settings = temporalSettings();
    const connection = await open(settings.nativeConnection).catch((err: unknown) => { throw connectError(settings, err); });
    return { settings, connection };
  } catch (err) {
    throw err instanceof CliError && err.hint ? new Error(`${err.message}\nhint: ${err.hint}`) : err;
  }
}

/** The gRPC status code of an error or of one of its causes. */
export function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
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
