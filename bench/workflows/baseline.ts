import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';

/**
 * The baseline for `npm run bench -- engine`: what a person would write by hand in
 * Temporal to call the same no-op activity as twinflow's `core/noop` stages, in the same
 * order (a chain, or all at once).
 */
export async function baselineWorkflow(shape: 'chain' | 'wide', n: number, taskQueue: string): Promise<number> {
  const { noop } = proxyActivities<Activities>({ taskQueue, startToCloseTimeout: '1 minute', heartbeatTimeout: '30 seconds', retry: { maximumAttempts: 1 } });
  const call = (i: number) => noop({ runId: 'baseline', stageId: `s${i}`, uses: 'core/noop', kindVersion: '1', with: {}, shellEnv: {} });
  if (shape === 'chain') {
    for (let i = 0; i < n; i++) await call(i);
  } else {
    await Promise.all(Array.from({ length: n }, (_, i) => call(i)));
  }
  return n;
}
