import { randomBytes } from 'node:crypto';
import type { CompiledPipeline } from '../engine/types.js';
import { CONTROL_QUEUE, INTERPRETER_WORKFLOW, type RunOptions } from '../workflows/messages.js';
import { pipelineKey, stateKey } from '../workflows/search-attributes.js';
import type { pipelineWorkflow } from '../workflows/pipeline.js';
import type { Session } from './client.js';

/** A readable, unique run id: `pipeline-YYYYMMDD-HHMMSS-xxxx`. */
export function newRunId(pipeline: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${pipeline}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/**
 * Starts the interpreter for a compiled pipeline. The pipeline travels as the workflow's
 * input, pinned for the run's life: editing the file later never changes a running run.
 */
export async function submitPipeline(
  session: Session,
  pipeline: CompiledPipeline,
  options: Omit<RunOptions, 'searchAttributes'> & { runId?: string } = {},
): Promise<string> {
  const { runId = newRunId(pipeline.name), ...runOptions } = options;
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
  } catch (err) {
    // A cluster without twinflow's search attributes still runs pipelines; the UI just lists fewer columns.
    if (!/search attribute/i.test((err as Error).message)) throw err;
    await start(false);
  }
  return runId;
}
