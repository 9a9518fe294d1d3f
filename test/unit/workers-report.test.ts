import { describe, expect, it } from 'vitest';
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import { byWorker, pendingStage, renderWorkers, type QueueWorkers } from '../../cli/commands/workers.js';

const STARTED = 2;
const SCHEDULED = 1;
const at = (iso: string) => msNumberToTs(Date.parse(iso));

describe('twinflow workers report', () => {
  it('takes the stage from a stage activity id, and from the workflow id for a review\'s own activities', () => {
    expect(pendingStage('run-1', { activityId: 'train[size=5000]#2', activityType: { name: 'runShell' }, state: STARTED, attempt: 3, lastWorkerIdentity: 'w1' }))
      .toMatchObject({ runId: 'run-1', stage: 'train[size=5000]', activity: 'runShell', state: 'started', attempt: 3, worker: 'w1' });
    expect(pendingStage('run-1/review/dupes', { activityId: '4', activityType: { name: 'openReviewQueue' }, state: SCHEDULED }))
      .toMatchObject({ runId: 'run-1', stage: 'dupes', state: 'scheduled' });
  });

  it('groups running stages under their worker, keeps a worker that no longer polls, and lists what waits for one', () => {
    const queues: QueueWorkers[] = [
      { queue: 'workflows', taskQueue: 'twinflow', pollers: [{ identity: '1@a (cpu, workflows)', lastAccessTime: '2026-12-03T10:00:05.000Z' }] },
      { queue: 'cpu', taskQueue: 'twinflow-cpu', pollers: [{ identity: '1@a (cpu, workflows)', lastAccessTime: '2026-12-03T10:00:08.000Z' }] },
      { queue: 'gpu', taskQueue: 'twinflow-gpu', pollers: [] },
    ];
    const pending = [
      pendingStage('run-1', { activityId: 'embed#1', activityType: { name: 'embedImages' }, state: STARTED, lastWorkerIdentity: '1@a (cpu, workflows)', lastStartedTime: at('2026-12-03T09:59:00Z') }),
      pendingStage('run-2', { activityId: 'train#1', activityType: { name: 'runShell' }, state: STARTED, lastWorkerIdentity: '9@gone (gpu)' }),
      pendingStage('run-2', { activityId: 'eval#1', activityType: { name: 'runShell' }, state: SCHEDULED }),
    ];
    const workers = byWorker(queues, pending);
    expect(workers.map((w) => [w.identity, w.queues, w.lastAccessTime, w.running.map((r) => r.stage)])).toEqual([
      ['1@a (cpu, workflows)', ['workflows', 'cpu'], '2026-12-03T10:00:08.000Z', ['embed']],
      ['9@gone (gpu)', [], null, ['train']],
    ]);
    const text = renderWorkers({ address: 'h:7233', namespace: 'default', queues, workers, waiting: [pending[2]!] }, Date.parse('2026-12-03T10:00:10Z')).join('\n');
    expect(text).toContain('1@a (cpu, workflows)  workflows, cpu  2s ago       run-1 embed (embedImages, attempt 1, 1m10s)');
    expect(text).toContain('9@gone (gpu)          -               not polling  run-2 train (runShell, attempt 1)');
    expect(text).toContain('waiting for a worker: run-2 eval (runShell)');
  });
});
