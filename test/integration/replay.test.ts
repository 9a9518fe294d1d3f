/**
 * Determinism of the interpreter:
 * - a fresh history (approval, failure, retry with new input, cache hit) replays cleanly
 * - every recorded history under test/fixtures/histories replays with today's code, so a
 *   change that would break runs already in flight fails here first
 * Set RECORD_HISTORIES=1 to (re)record the fixture from this run.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';

// Histories are kept as binary protobuf: protojson trips over two protobufjs copies in node_modules.
const { History } = temporal.api.history.v1;
import { approveUpdate, retryUpdate } from '../../workflows/messages.js';
import { startHarness, workflowBundle, type Harness } from './harness.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/histories');
let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => h?.stop());

const PIPELINE = `
name: replayed
params: { n: 4 }
stages:
  make: { uses: core/shell, cache: true, with: { run: 'echo "{\\"n\\": \${{ params.n }}}"' } }
  gate: { uses: core/approval, needs: [make], with: { message: 'ok?' } }
  flaky: { uses: core/shell, needs: [gate], with: { run: 'exit 1' } }
  side: { uses: core/shell, if: "\${{ params.n == 4 }}", with: { run: 'echo side' } }
  never: { uses: core/shell, if: "params.n != 4", with: { run: 'echo never' } }
  last: { uses: core/shell, with: { run: 'echo "{\\"m\\": \${{ stages.flaky.outputs.m }}}"' } }
`;

describe('replay', () => {
  it('replays a fresh history of approvals, failures, retries and cache hits', async () => {
    // A first run fills the cache for `make`, so the recorded run has a cache hit.
    const warm = await h.submit(PIPELINE.replace('name: replayed', 'name: warm'));
    await h.waitFor(warm, 'make to finish', (s) => s.stages.make!.state === 'succeeded');
    await h.env.client.workflow.getHandle(warm).cancel();
    const runId = await h.submit(PIPELINE);
    const handle = h.env.client.workflow.getHandle(runId);
    await h.waitFor(runId, 'the gate', (s) => s.stages.gate!.state === 'waiting');
    await handle.executeUpdate(approveUpdate, { args: [{ stage: 'gate', by: 'ana', note: 'fine' }] });
    await h.waitFor(runId, 'flaky to fail', (s) => s.stages.flaky!.state === 'failed');
    await handle.executeUpdate(retryUpdate, { args: [{ stage: 'flaky', by: 'ana', set: { run: `echo '{"m": 2}'` } }] });
    const done = await h.result(runId);
    expect(done.state).toBe('succeeded');
    expect(done.stages.make!.state).toBe('cached');
    expect(done.stages.never!.state).toBe('skipped');
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, runId);
    if (process.env.RECORD_HISTORIES) {
      await fs.mkdir(fixtures, { recursive: true });
      await fs.writeFile(path.join(fixtures, 'approval-retry-cache.binpb'), History.encode(history).finish());
    }
  });

  it('replays every recorded history with the current interpreter', async () => {
    const files = (await fs.readdir(fixtures)).filter((f) => f.endsWith('.binpb'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const history = History.decode(await fs.readFile(path.join(fixtures, file)));
      await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, file);
    }
  });
});
