import { randomBytes } from 'node:crypto';
import proto from '@temporalio/proto';
import type { CompiledPipeline } from '../engine/types.js';
import { CONTROL_QUEUE, INTERPRETER_WORKFLOW, SEARCH_ATTRIBUTES, type RunOptions } from '../workflows/messages.js';
import { pipelineKey, stateKey } from '../workflows/search-attributes.js';
import type { pipelineWorkflow } from '../workflows/pipeline.js';
import type { Session } from './client.js';
import { causeText } from './errors.js';

/** A readable, unique run id: `pipeline-YYYYMMDD-HHMMSS-xxxx`. */
export function newRunId(pipeline: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${pipeline}-${stamp}-${randomBytes(2).toString('hex')}`;
}

export interface SubmitOptions extends Omit<RunOptions, 'searchAttributes'> {
  runId?: string;
  /** Told what was done about the cluster on the way (search attributes registered, or not). */
  onNote?: (text: string) => void;
}

/**
 * Starts the interpreter for a compiled pipeline. The pipeline travels as the workflow's
 * input, pinned for the run's life: editing the file later never changes a running run.
 */
export async function submitPipeline(session: Session, pipeline: CompiledPipeline, options: SubmitOptions = {}): Promise<string> {
  const { runId = newRunId(pipeline.name), onNote, ...runOptions } = options;
  const start = (searchAttributes: boolean) =>
    session.client.workflow.start<typeof pipelineWorkflow>(INTERPRETER_WORKFLOW, {
      workflowId: runId,
      taskQueue: CONTROL_QUEUE,
      args: [{ pipeline, options: { ...runOptions, searchAttributes } }],
      memo: { pipeline: pipeline.name, source: pipeline.source },
      ...(searchAttributes
        ? { typedSearchAttributes: [{ key: pipelineKey, value: pipeline.name }, { key: stateKey, value: 'running' }] }
        : {}),
    });
  try {
    await start(true);
    return runId;
  } catch (err) {
    if (!/search attribute/i.test(causeText(err))) throw err;
  }
  // A stock server or cluster lacks twinflow's search attributes: register them and go on.
  const whyNot = await registerSearchAttributes(session);
  if (!whyNot) {
    for (let i = 0; i < 20; i++) {
      try {
        await start(true);
        onNote?.(`registered twinflow's search attributes (${Object.values(SEARCH_ATTRIBUTES).join(', ')}) in namespace ${session.client.options.namespace}`);
        return runId;
      } catch (err) {
        // The server's search attribute cache catches up within seconds.
        if (!/search attribute/i.test(causeText(err))) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  onNote?.(unregisteredNote(session.client.options.namespace, whyNot ?? 'the server still did not know them 10 s after registering'));
  await start(false);
  return runId;
}

/**
 * What to tell a person when the run goes on without search attributes: the commands that
 * add them, for Temporal Cloud (where only tcld or the Cloud UI may) and for a self-hosted cluster.
 */
export function unregisteredNote(namespace: string, why: string): string {
  const names = Object.values(SEARCH_ATTRIBUTES);
  const tcld = `tcld namespace search-attributes add --namespace ${namespace} ${names.map((n) => `--search-attribute ${n}=Keyword`).join(' ')}`;
  const operator = names.map((n) => `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type Keyword`).join(' && ');
  return `twinflow's search attributes (${names.join(', ')}) are not registered in namespace ${namespace}, and registering them failed (${why}); ` +
    'the run goes on without them, but `twinflow list` cannot show its state and the Web UI cannot filter by it. Add them once: ' +
    `on Temporal Cloud \`${tcld}\`; on a self-hosted cluster \`${operator}\``;
}

/**
 * Adds twinflow's search attributes through the operator service: undefined when they are
 * there now, else why not (Temporal Cloud answers PermissionDenied or Unimplemented).
 */
async function registerSearchAttributes(session: Session): Promise<string | undefined> {
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  try {
    await session.client.connection.operatorService.addSearchAttributes({
      namespace: session.client.options.namespace,
      searchAttributes: Object.fromEntries(Object.values(SEARCH_ATTRIBUTES).map((name) => [name, keyword])),
    });
    return undefined;
  } catch (err) {
    // Another submit registered them a moment ago.
    return /already exists/i.test(causeText(err)) ? undefined : causeText(err);
  }
}
