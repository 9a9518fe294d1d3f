import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Progress, RunState } from '../engine/types.js';
import { statusQuery, type RunStatus, type StageStatus } from '../workflows/messages.js';
import { reviewProgressQuery } from '../workflows/review-messages.js';
import type { StageHeartbeat } from '../activities/stage-io.js';
import { causeText, CliError } from './errors.js';
import { runHandle, type Session } from './client.js';

export interface StageView extends StageStatus {
  progress?: Progress;
  /** Scheduled but not yet picked up: no worker serves its queue, or all are busy. */
  queued?: boolean;
}

const SCHEDULED = 1; // PENDING_ACTIVITY_STATE_SCHEDULED

export interface RunView extends Omit<RunStatus, 'stages'> {
  stages: Record<string, StageView>;
  /** Temporal's own status of the execution (RUNNING, COMPLETED, TERMINATED, ...). */
  temporalStatus: string;
}

const QUERY_DEADLINE_MS = 10_000;

/**
 * A run's state: from the interpreter's query while it runs (plus progress from the
 * heartbeats of its pending activities), from its result once it has ended.
 */
export async function fetchRun(session: Session, runId: string): Promise<RunView> {
  const handle = await runHandle(session, runId);
  const desc = await handle.describe();
  const temporalStatus = desc.status.name;
  let status: RunStatus;
  if (temporalStatus === 'COMPLETED') {
    status = await handle.result();
  } else if (temporalStatus === 'RUNNING') {
    status = await queryStatus(session, runId, () => handle.query(statusQuery));
  } else {
    return endedAbnormally(desc, runId, temporalStatus);
  }
  return { ...status, stages: await withReviewProgress(session, withProgress(status.stages, desc)), temporalStatus };
}

/** Open reviews report how many items people have decided, and who decided them. */
async function withReviewProgress(session: Session, views: Record<string, StageView>): Promise<Record<string, StageView>> {
  for (const [id, view] of Object.entries(views)) {
    if (view.state !== 'waiting' || !view.review) continue;
    const progress = await session.client.workflow.getHandle(view.review.workflowId).query(reviewProgressQuery).catch(() => undefined);
    if (!progress) continue;
    const who = Object.entries(progress.byReviewer).map(([name, n]) => `${name} ${n}`).join(', ');
    const late = progress.overdue ? 'overdue' : progress.deadlineAt ? `deadline ${progress.deadlineAt}` : '';
    views[id] = { ...view, progress: { done: progress.decided, total: progress.total, unit: 'items', message: [who, late].filter(Boolean).join('; ') } };
  }
  return views;
}

async function queryStatus(session: Session, runId: string, query: () => Promise<RunStatus>): Promise<RunStatus> {
  try {
    return await session.client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, query);
  } catch (err) {
    // The server's words for "nobody polls" vary by version and load; the queue's pollers do not.
    if (/deadline|timeout|no poller|not.*poll/i.test(causeText(err)) || !(await hasWorkflowPollers(session, runId))) {
      throw new CliError(
        `run ${runId} did not answer its status query: no worker is serving the twinflow queue`,
        'start one with `npx twinflow dev` (embedded) or `npx tsx worker.ts`',
      );
    }
    throw err;
  }
}

/** Whether any worker polls the workflow task queue of the run (true when that cannot be told). */
async function hasWorkflowPollers(session: Session, runId: string): Promise<boolean> {
  try {
    const desc = await session.client.workflow.getHandle(runId).describe();
    const answer = await session.client.workflowService.describeTaskQueue({
      namespace: session.client.options.namespace,
      taskQueue: { name: desc.taskQueue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (answer.pollers ?? []).length > 0;
  } catch {
    return true;
  }
}

function endedAbnormally(desc: WorkflowExecutionDescription, runId: string, temporalStatus: string): RunView {
  const state: RunState = temporalStatus === 'CANCELLED' ? 'cancelled' : 'failed';
  return {
    runId,
    pipeline: String(desc.memo?.pipeline ?? desc.type),
    state,
    startedAt: desc.startTime.toISOString(),
    endedAt: desc.closeTime?.toISOString(),
    order: [],
    stages: {},
    params: {},
    generation: 0,
    temporalStatus,
  };
}

function withProgress(stages: Record<string, StageStatus>, desc: WorkflowExecutionDescription): Record<string, StageView> {
  const views: Record<string, StageView> = { ...stages };
  for (const pending of desc.raw.pendingActivities ?? []) {
    const stageId = (pending.activityId ?? '').replace(/#\d+$/, '');
    if (!views[stageId]) continue;
    if (Number(pending.state) === SCHEDULED) views[stageId] = { ...views[stageId]!, queued: true };
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    try {
      const beat = defaultPayloadConverter.fromPayload<StageHeartbeat>(payload);
      if (beat?.progress) views[stageId] = { ...views[stageId]!, progress: beat.progress };
    } catch {
      // Progress is a nicety; an undecodable heartbeat leaves the row without a bar.
    }
  }
  return views;
}
