import { openStores } from '../../activities/store/config.js';
import type { CompiledPipeline } from '../../engine/types.js';
import { INTERPRETER_WORKFLOW } from '../../workflows/messages.js';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { connect, runHandle, type Session } from '../client.js';
import { CliError } from '../errors.js';
import { fetchRun, type RunView } from '../run-status.js';
import { printable, renderRun, table, elapsed } from '../render.js';
import { submitPipeline } from '../submit.js';
import { watchRun } from '../watch.js';

export async function runCommand(p: CompiledPipeline, opts: { wait?: boolean; json?: boolean; noCache?: boolean }): Promise<void> {
  const session = await connect();
  try {
    const runId = await submitPipeline(session, p, { noCache: opts.noCache, onNote: (text) => console.error(`note: ${text}`) });
    if (opts.json && !opts.wait) {
      console.log(JSON.stringify({ runId }));
      return;
    }
    if (!opts.json) console.log(`started run ${runId} (pipeline ${p.name}, ${p.order.length} stages)`);
    if (!opts.wait) {
      console.log(`follow it with: npx twinflow status ${runId} --watch`);
      return;
    }
    const run = await watchRun(session, runId, opts.json ? { live: false, out: () => undefined } : {});
    if (opts.json) console.log(JSON.stringify(statusJson(run), null, 2));
    else if (!process.stdout.isTTY) console.log(renderRun(run));
    if (run.state !== 'succeeded') process.exitCode = 1;
  } finally {
    await session.close();
  }
}

/** The documented `status --json` shape. */
export function statusJson(run: RunView) {
  const stages = Object.fromEntries(
    run.order.map((id) => {
      const s = run.stages[id]!;
      return [id, {
        state: s.state, uses: s.uses, queue: s.queue, attempts: s.attempts,
        startedAt: s.startedAt ?? null, endedAt: s.endedAt ?? null, outputs: s.outputs ?? null,
        error: s.error ?? null, approval: s.approval ?? null, progress: s.progress ?? null, queued: s.queued ?? false,
        cacheKey: s.cacheKey ?? null, skippedReason: s.skippedReason ?? null, events: s.events,
      }];
    }),
  );
  return { runId: run.runId, pipeline: run.pipeline, state: run.state, startedAt: run.startedAt, endedAt: run.endedAt ?? null, params: run.params, stages };
}

export async function statusCommand(runId: string, opts: { json?: boolean; watch?: boolean }): Promise<void> {
  const session = await connect();
  try {
    const run = opts.watch ? await watchRun(session, runId) : await fetchRun(session, runId);
    if (opts.json) console.log(JSON.stringify(statusJson(run), null, 2));
    else if (!opts.watch) console.log(renderRun(run));
    if (!opts.json && !opts.watch) printDecisions(run);
  } finally {
    await session.close();
  }
}

/** Approvals and failures with the commands that move them on. */
function printDecisions(run: RunView): void {
  const lines: string[] = [];
  for (const id of run.order) {
    const s = run.stages[id]!;
    for (const e of s.events.filter((e) => e.by)) lines.push(`  ${id}: ${e.event} by ${e.by} at ${e.at}${e.note ? ` — ${e.note}` : ''}`);
    // A run that has ended takes no more decisions: suggesting retry or approve would only fail.
    if (run.temporalStatus !== 'RUNNING') continue;
    if (s.state === 'waiting' && s.waitingFor === 'review') {
      lines.push(`  ${id}: npx twinflow review ${run.runId} ${id} (the review page)   |   npx twinflow review decide ${run.runId} ${id} --file decisions.jsonl`);
    } else if (s.state === 'waiting') lines.push(`  ${id}: npx twinflow approve ${run.runId} ${id}   |   npx twinflow reject ${run.runId} ${id} --note WHY`);
    if (s.state === 'failed') {
      if (s.error?.logTail?.length) lines.push(`  ${id} failed; last lines:\n${s.error.logTail.slice(-10).map((l) => `    | ${l}`).join('\n')}`);
      lines.push(`  ${id}: npx twinflow retry ${run.runId} ${id} [--set KEY=VALUE]   |   npx twinflow skip ${run.runId} ${id}   |   npx twinflow logs ${run.runId} ${id}`);
    }
  }
  if (lines.length) console.log(`\n${printable(lines.join('\n'), true)}`);
}

export async function listCommand(opts: { json?: boolean; limit: number }): Promise<void> {
  const session = await connect();
  try {
    const rows: Array<{ runId: string; pipeline: string; status: string; startedAt: string }> = [];
    for await (const wf of session.client.workflow.list({ query: `WorkflowType = '${INTERPRETER_WORKFLOW}' AND ExecutionStatus != 'ContinuedAsNew'` })) {
      rows.push({ runId: wf.workflowId, pipeline: String(wf.memo?.pipeline ?? ''), status: await runState(session, wf), startedAt: wf.startTime.toISOString() });
      if (rows.length >= opts.limit) break;
    }
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    if (!rows.length) return console.log('no runs yet; start one with `npx twinflow run FILE`');
    for (const line of table(['RUN', 'PIPELINE', 'STATE', 'STARTED'], rows.map((r) => [r.runId, r.pipeline, r.status, `${r.startedAt} (${elapsed(r.startedAt)} ago)`]))) console.log(line);
  } finally {
    await session.close();
  }
}

/**
 * A run's state as twinflow names it. A run that ended by itself completed as a workflow
 * whatever its state (a cancelled run too: it returns its final table), so the state comes
 * from its search attribute, or from its result on a cluster without them.
 */
async function runState(session: Session, wf: WorkflowExecutionInfo): Promise<string> {
  const state = wf.searchAttributes?.TwinflowState?.[0];
  if (wf.status.name === 'RUNNING') return typeof state === 'string' ? state : 'running';
  if (wf.status.name !== 'COMPLETED') return wf.status.name.toLowerCase();
  if (state === 'succeeded' || state === 'cancelled') return state;
  const result = await session.client.workflow.getHandle(wf.workflowId, wf.runId).result().catch(() => undefined) as { state?: string } | undefined;
  return result?.state ?? 'completed';
}

export async function logsCommand(runId: string, stage: string): Promise<void> {
  const { logs, shared } = openStores();
  const file = logs.file(runId, stage);
  const text = await logs.read(runId, stage);
  if (text !== undefined) return void process.stdout.write(text);
  // Without a shared store the log lives on the worker's host: show what the run kept.
  const session = await connect();
  try {
    const run = await fetchRun(session, runId);
    const s = run.stages[stage];
    if (!s) throw new CliError(`run ${runId} has no stage ${stage}`, `stages: ${run.order.join(', ')}`, 2);
    if (!s.error?.logTail?.length) {
      throw new CliError(`no log for ${stage} ${shared ? 'in the store' : `at ${file}`}`, shared ? 'only core/shell and tool-running stages write logs' : 'logs are written on the worker\'s host under its TWINFLOW_HOME; set TWINFLOW_STORE on every host to read them from anywhere');
    }
    console.log(`(log file not on this host; last lines kept by the run)\n${s.error.logTail.join('\n')}`);
  } finally {
    await session.close();
  }
}

export async function cancelCommand(runId: string, opts: { wait: boolean }): Promise<void> {
  const session = await connect();
  try {
    const handle = await runHandle(session, runId);
    await handle.cancel();
    console.log(`cancel requested for ${runId}; running stages are being stopped`);
    if (!opts.wait) return;
    const result = await session.client.connection.withDeadline(Date.now() + 120_000, () => handle.result());
    console.log(`run ${runId} is ${result.state}`);
  } finally {
    await session.close();
  }
}
