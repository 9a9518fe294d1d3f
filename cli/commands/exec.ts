import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import type { StageActivityInput } from '../../activities/stage-io.js';
import { getKind, kinds } from '../../engine/kinds/registry.js';
import { didYouMean } from '../../engine/diagnostics.js';
import type { JsonObject } from '../../engine/types.js';
import { CliError } from '../errors.js';
import { coerceValue } from '../values.js';

/**
 * Runs one stage kind in this process, without a server: for debugging a kind and for
 * scripts. It goes through the same activity code (and input validation) a worker runs.
 */
export async function execCommand(uses: string, raw: Record<string, string>, opts: { json?: boolean }): Promise<void> {
  const kind = getKind(uses);
  if (!kind) {
    const hint = didYouMean(uses, [...kinds.keys()]);
    throw new CliError(`unknown stage kind ${uses}${hint ? `; did you mean ${hint}?` : ''}`, `kinds: ${[...kinds.keys()].join(', ')}`, 2);
  }
  if (kind.handler !== 'activity') {
    throw new CliError(`${uses} waits for people; it only runs inside a run`, 'use `npx twinflow run FILE`', 2);
  }
  const shape = kind.with.shape as Record<string, Parameters<typeof coerceValue>[1]>;
  const inputs: JsonObject = {};
  for (const [key, value] of Object.entries(raw)) inputs[key] = coerceValue(value, shape[key]);
  const activities = createActivities() as unknown as Record<string, (i: StageActivityInput) => Promise<{ outputs: JsonObject; log?: string }>>;
  const input: StageActivityInput = {
    runId: `exec-${Date.now()}`, stageId: uses.replace('/', '-'), uses, kindVersion: kind.version, with: inputs, shellEnv: {},
  };
  // The stage's own failure is printed once, below; the SDK's warning with its stack trace would repeat it.
  const logger = new DefaultLogger(process.env.TWINFLOW_LOG_LEVEL === 'debug' ? 'DEBUG' : 'ERROR');
  const env = new MockActivityEnvironment({ attempt: 1, activityType: kind.uses }, { logger });
  if (!opts.json) env.on('heartbeat', (d: { progress?: { done: number; total?: number } }) => {
    if (d?.progress) process.stderr.write(`progress ${d.progress.done}${d.progress.total ? `/${d.progress.total}` : ''}\n`);
  });
  try {
    const result = (await env.run(activities[kind.uses]!, input)) as { outputs: JsonObject; log?: string };
    console.log(opts.json ? JSON.stringify(result.outputs) : `outputs: ${JSON.stringify(result.outputs, null, 2)}\nlog: ${result.log ?? '-'}`);
  } catch (err) {
    // Inputs the kind refuses are the command's fault (exit 2); anything else is the stage's (exit 1).
    const invalid = (err as { type?: string }).type === 'InvalidStageInput';
    throw new CliError(`${uses} failed: ${(err as Error).message}`, undefined, invalid ? 2 : 1);
  }
}
