import proto from '@temporalio/proto';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { CONTROL_QUEUE, LEGACY_CONTROL_QUEUE } from '../../workflows/messages.js';
import { activityQueue } from '../../workflows/pipeline.js';
import { connect, type Session } from '../client.js';
import { elapsed, table } from '../render.js';

const { TaskQueueType, TaskQueueKind, PendingActivityState } = proto.temporal.api.enums.v1;
type PendingActivity = proto.temporal.api.workflow.v1.IPendingActivityInfo;

/** The queues every deployment has; `--queue` and the runs themselves add others. */
const KNOWN_QUEUES = ['cpu', 'gpu'];
/** Enough for a cluster's worth of running runs without describing thousands one by one. */
const MOST_RUNS = 200;

/** One twinflow queue and the workers polling it. */
export interface QueueWorkers {
  /** `workflows` for the interpreter's queue, else the pipeline's queue name (`cpu`, `gpu`, ...). */
  queue: string;
  /** The Temporal task queue behind it. */
  taskQueue: string;
  pollers: Array<{ identity: string; lastAccessTime: string | null }>;
}

/** A stage activity of a running run, as Temporal holds it. */
export interface PendingStage {
  runId: string;
  stage: string;
  /** The activity type: what the stage's kind runs (`runShell`, `embedImages`, ...). */
  activity: string;
  /** `started` (a worker has it), `scheduled` (waiting for one) or `cancel-requested`. */
  state: string;
  attempt: number;
  startedAt: string | null;
  /** Set when the server reports it. */
  taskQueue?: string;
  /** The worker that took the latest attempt. */
  worker?: string;
}

/** A worker identity with the queues it polls and the stages it runs. */
export interface WorkerView {
  identity: string;
  queues: string[];
  lastAccessTime: string | null;
  running: PendingStage[];
}

export interface WorkersReport {
  address: string;
  namespace: string;
  queues: QueueWorkers[];
  workers: WorkerView[];
  /** Stages no worker has taken yet. */
  waiting: PendingStage[];
}

export async function workersCommand(opts: { queue: string[]; json?: boolean }): Promise<void> {
  const session = await connect();
  try {
    const report = await workersReport(session, opts.queue);
    console.log(opts.json ? JSON.stringify(report, null, 2) : renderWorkers(report).join('\n'));
  } finally {
    await session.close();
  }
}

/** Who polls each twinflow queue, and what each worker runs now. */
export async function workersReport(session: Session, extraQueues: string[] = []): Promise<WorkersReport> {
  const pending = await pendingStages(session);
  const seen = pending.flatMap((p) => (p.taskQueue?.startsWith(activityQueue('')) ? [p.taskQueue.slice(activityQueue('').length)] : []));
  const names = [...new Set([...KNOWN_QUEUES, ...extraQueues, ...seen])];
  const queues = await Promise.all([
    describeQueue(session, 'workflows', CONTROL_QUEUE, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
    ...names.map((name) => describeQueue(session, name, activityQueue(name), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)),
  ]);
  const waiting = pending.filter((p) => p.state === 'scheduled');
  return { address: session.address, namespace: session.client.options.namespace, queues, workers: byWorker(queues, pending), waiting };
}

async function describeQueue(session: Session, queue: string, taskQueue: string, type: proto.temporal.api.enums.v1.TaskQueueType): Promise<QueueWorkers> {
  const answer = await session.client.workflowService.describeTaskQueue({
    namespace: session.client.options.namespace,
    taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: type,
  });
  const pollers = (answer.pollers ?? []).map((p) => ({ identity: p.identity ?? '', lastAccessTime: isoOf(p.lastAccessTime) }));
  return { queue, taskQueue, pollers: pollers.sort((a, b) => a.identity.localeCompare(b.identity)) };
}

/** The pending activities of every running twinflow workflow (runs and their reviews). */
async function pendingStages(session: Session): Promise<PendingStage[]> {
  const ids: Array<{ workflowId: string; runId: string }> = [];
  // Runs started before workflows moved to the cpu queue are still on the legacy one.
  const query = `(TaskQueue = '${CONTROL_QUEUE}' OR TaskQueue = '${LEGACY_CONTROL_QUEUE}') AND ExecutionStatus = 'Running'`;
  for await (const wf of session.client.workflow.list({ query })) {
    ids.push({ workflowId: wf.workflowId, runId: wf.runId });
    if (ids.length >= MOST_RUNS) break;
  }
  const described = await Promise.all(ids.map(async ({ workflowId, runId }) => {
    // A run that ended between the list and the describe has nothing pending.
    const desc = await session.client.workflow.getHandle(workflowId, runId).describe().catch(() => undefined);
    return (desc?.raw.pendingActivities ?? []).map((a) => pendingStage(workflowId, a));
  }));
  return described.flat();
}

/**
 * A stage's activity id is `STAGE#ATTEMPT` (workflows/pipeline.ts); a review's own
 * activities belong to the workflow `RUN/review/STAGE`.
 */
export function pendingStage(workflowId: string, a: PendingActivity): PendingStage {
  const review = /^(.*)\/review\/([^/]+)$/.exec(workflowId);
  const state = Number(a.state);
  const taskQueue = a.activityOptions?.taskQueue?.name ?? undefined;
  return {
    runId: review ? review[1]! : workflowId,
    stage: review ? review[2]! : (a.activityId ?? '').replace(/#\d+$/, ''),
    activity: a.activityType?.name ?? '',
    state: state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED ? 'scheduled'
      : state === PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED ? 'cancel-requested' : 'started',
    attempt: a.attempt ?? 1,
    startedAt: isoOf(a.lastStartedTime),
    ...(taskQueue ? { taskQueue } : {}),
    ...(a.lastWorkerIdentity ? { worker: a.lastWorkerIdentity } : {}),
  };
}

/** Every poller once, with what it runs; a worker that runs something but no longer polls is listed too. */
export function byWorker(queues: QueueWorkers[], pending: PendingStage[]): WorkerView[] {
  const workers = new Map<string, WorkerView>();
  const get = (identity: string) => workers.get(identity) ?? workers.set(identity, { identity, queues: [], lastAccessTime: null, running: [] }).get(identity)!;
  for (const q of queues) {
    for (const p of q.pollers) {
      const w = get(p.identity);
      w.queues.push(q.queue);
      if (p.lastAccessTime && (!w.lastAccessTime || p.lastAccessTime > w.lastAccessTime)) w.lastAccessTime = p.lastAccessTime;
    }
  }
  for (const p of pending) if (p.state !== 'scheduled' && p.worker) get(p.worker).running.push(p);
  return [...workers.values()].sort((a, b) => a.identity.localeCompare(b.identity));
}

export function renderWorkers(report: WorkersReport, now = Date.now()): string[] {
  const queueRows = report.queues.map((q) => [q.queue, q.taskQueue, String(q.pollers.length), q.pollers.length ? '' : startHint(q.queue)]);
  const lines = [`Temporal ${report.address}, namespace ${report.namespace}`, '', ...table(['QUEUE', 'TASK QUEUE', 'WORKERS', ''], queueRows)];
  if (report.workers.length) {
    const rows = report.workers.flatMap((w) => {
      const seen = w.lastAccessTime ? `${elapsed(w.lastAccessTime, undefined, now)} ago` : 'not polling';
      const [first, ...rest] = w.running.length ? w.running.map((p) => stageText(p, now)) : ['idle'];
      return [[w.identity, w.queues.join(', ') || '-', seen, first!], ...rest.map((r) => ['', '', '', r])];
    });
    lines.push('', ...table(['WORKER', 'QUEUES', 'LAST POLL', 'RUNS NOW'], rows));
  }
  for (const p of report.waiting) lines.push(`waiting for a worker: ${p.runId} ${p.stage} (${p.activity}${p.taskQueue ? ` on ${p.taskQueue}` : ''})`);
  return lines;
}

function stageText(p: PendingStage, now: number): string {
  const since = p.startedAt ? `, ${elapsed(p.startedAt, undefined, now)}` : '';
  return `${p.runId} ${p.stage} (${p.activity}, attempt ${p.attempt}${since}${p.state === 'cancel-requested' ? ', cancelling' : ''})`;
}

function startHint(queue: string): string {
  if (queue === 'workflows') return 'no worker runs interpreter workflows: npx tsx worker.ts (or npx twinflow dev)';
  return `start one with: npx tsx worker.ts --queue ${queue} --no-workflows`;
}

function isoOf(ts: Parameters<typeof optionalTsToMs>[0]): string | null {
  const ms = optionalTsToMs(ts);
  return ms === undefined ? null : new Date(ms).toISOString();
}
