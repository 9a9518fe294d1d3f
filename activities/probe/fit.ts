import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { ProbeInputs } from '../../engine/kinds/probe.js';
import { toolOutputInvalid } from '../failures.js';
import type { StageActivityInput, StageHeartbeat } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { probeScript, runProbePython } from './python.js';

/** gpu/probe_fit.py's record of one dataset. */
export interface FitResult {
  linear: number;
  knn: number;
  C: number;
  train: number;
  test: number;
  classes: number;
  dims: number;
  /** Validation accuracy (0..1) of each C tried, keyed as Python prints it; empty for a single C. */
  validation: Record<string, number>;
  predictions: { linear: number[]; knn: number[] };
}

type FitSpec = Pick<ProbeInputs, 'seed' | 'k' | 'temperature' | 'C' | 'valFraction' | 'maxIter'>;

/**
 * The linear probe and kNN on the features in `dir` (train.f32, test.f32, labels.json),
 * by gpu/probe_fit.py. Its record is kept in `dir` under a key of the fit's settings, so a
 * retry (or a later dataset's failure) never fits a finished dataset again.
 */
export async function fitProbe(
  dir: string, spec: FitSpec,
  run: { logs: StageLogs; input: StageActivityInput; where: string; python: string; heartbeat?: () => StageHeartbeat },
): Promise<FitResult> {
  const args = ['--seed', String(spec.seed), '--k', String(spec.k), '--temperature', String(spec.temperature),
    '--C', spec.C.join(','), '--val-fraction', String(spec.valFraction), '--max-iter', String(spec.maxIter)];
  const record = path.join(dir, `fit-${createHash('sha256').update(args.join(' ')).digest('hex').slice(0, 16)}.json`);
  if (!(await fs.access(record).then(() => true, () => false))) {
    const partial = `${record}.partial`;
    await runProbePython(run.logs, run.input, run.where, {
      what: 'gpu/probe_fit.py', python: run.python, argv: [probeScript('probe_fit.py'), dir, partial, ...args],
      ...(run.heartbeat ? { heartbeat: run.heartbeat } : {}),
    });
    await fs.rename(partial, record);
  }
  const result = JSON.parse(await fs.readFile(record, 'utf8')) as FitResult;
  if (typeof result.linear !== 'number' || typeof result.knn !== 'number') throw toolOutputInvalid(`${run.where}: ${record} is not gpu/probe_fit.py's record`);
  return result;
}
