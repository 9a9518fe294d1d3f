import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/index.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import type { JsonObject } from '../../engine/types.js';

/** Activities over a temporary TWINFLOW_HOME for one test file, removed afterwards. */
export function activitiesInTempHome(prefix: string): { home: HomeLayout; acts: ReturnType<typeof createActivities> } {
  const ctx = {} as { home: HomeLayout; acts: ReturnType<typeof createActivities> };
  beforeAll(async () => {
    ctx.home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), `twinflow-${prefix}-`)));
    ctx.acts = createActivities({ home: ctx.home });
  });
  afterAll(() => fs.rm(ctx.home.root, { recursive: true, force: true }));
  return ctx;
}

/** One stage activity run as the interpreter would call it (run r1, attempt 1). */
export function runStage(activity: (input: StageActivityInput) => Promise<StageActivityResult>, uses: string, w: Record<string, unknown>, stageId = uses.replace('/', '-')): Promise<StageActivityResult> {
  const input: StageActivityInput = { runId: 'r1', stageId, uses, kindVersion: '1', with: w as JsonObject, shellEnv: {} };
  return new MockActivityEnvironment({ attempt: 1 }).run(activity, input) as Promise<StageActivityResult>;
}
