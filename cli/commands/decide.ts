import { WorkflowUpdateFailedError } from '@temporalio/client';
import { getKind } from '../../engine/kinds/registry.js';
import { didYouMean } from '../../engine/diagnostics.js';
import type { Json } from '../../engine/types.js';
import { approveUpdate, rejectUpdate, retryUpdate, skipUpdate, type StageStatus } from '../../workflows/messages.js';
import { stripControls } from '../../workflows/review-messages.js';
import { connect, runHandle } from '../client.js';
import { CliError } from '../errors.js';
import { fetchRun } from '../run-status.js';
import { whoami } from '../identity.js';
import { coerceValue } from '../values.js';

export type Decision = 'approve' | 'reject' | 'retry' | 'skip';

const UPDATES = { approve: approveUpdate, reject: rejectUpdate, retry: retryUpdate, skip: skipUpdate } as const;
const PAST = { approve: 'approved', reject: 'rejected', retry: 'sent back to run', skip: 'skipped' } as const;

export interface DecideOptions {
  note?: string;
  as?: string;
  set?: Record<string, string>;
}

/** Sends one decision; the workflow's validator refuses it with a reason when it does not apply. */
export async function decideCommand(kind: Decision, runId: string, stage: string, opts: DecideOptions): Promise<StageStatus> {
  if (kind === 'reject' && !opts.note?.trim()) throw new CliError('a rejection needs a reason', 'add --note "why"', 2);
  const session = await connect();
  try {
    const handle = await runHandle(session, runId);
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      throw new CliError(`run ${runId} has ended (${status.name.toLowerCase()}); there is nothing left to ${kind}`);
    }
    const set = opts.set && Object.keys(opts.set).length ? await retryInputs(session, runId, stage, opts.set) : undefined;
    const note = opts.note === undefined ? undefined : stripControls(opts.note, 'lines');
    const args = { stage, by: stripControls(whoami(opts.as)), ...(note ? { note } : {}), ...(set ? { set } : {}) };
    try {
      const result = await handle.executeUpdate(UPDATES[kind], { args: [args] });
      console.log(`${runId} ${stage}: ${PAST[kind]} by ${args.by}${set ? ` with ${JSON.stringify(set)}` : ''}`);
      return result;
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        const reason = err.cause?.message ?? err.message;
        // The run's own answer to a stage it does not have is a usage error, like an unknown run.
        throw new CliError(`cannot ${kind} ${stage} in ${runId}: ${reason}`, undefined, reason.startsWith('unknown stage') ? 2 : 1);
      }
      throw err;
    }
  } finally {
    await session.close();
  }
}

/** Checks `--set` keys against the stage kind's inputs and types each value for it. */
async function retryInputs(session: Parameters<typeof fetchRun>[0], runId: string, stage: string, raw: Record<string, string>): Promise<Record<string, Json>> {
  const run = await fetchRun(session, runId);
  const s = run.stages[stage];
  if (!s) throw new CliError(`run ${runId} has no stage ${stage}`, `stages: ${run.order.join(', ')}`, 2);
  const shape = getKind(s.uses)?.with.shape ?? {};
  const fields = Object.keys(shape);
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in shape)) {
      const hint = didYouMean(key, fields);
      throw new CliError(`${s.uses} has no input ${key}${hint ? `; did you mean ${hint}?` : ''}`, `inputs: ${fields.join(', ')}`, 2);
    }
    out[key] = coerceValue(value, shape[key as keyof typeof shape]);
  }
  return out;
}
