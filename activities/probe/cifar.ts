import fs from 'node:fs/promises';
import path from 'node:path';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import type { ProbeData } from './layouts.js';
import { probeScript, runProbePython } from './python.js';

/**
 * CIFAR-100's python pickles (`cifar-100-python/train`, `test`, `meta`), decoded by
 * gpu/probe_cifar.py into raw 32 x 32 RGB files in `dir`; a decoded folder is reused.
 */
export async function readCifar100(root: string, dir: string, run: { logs: StageLogs; input: StageActivityInput; where: string; python: string }): Promise<ProbeData> {
  const record = path.join(dir, 'cifar.json');
  if (!(await fs.access(record).then(() => true, () => false))) {
    await runProbePython(run.logs, run.input, run.where, { what: 'gpu/probe_cifar.py', python: run.python, argv: [probeScript('probe_cifar.py'), root, dir] });
  }
  const decoded = JSON.parse(await fs.readFile(record, 'utf8')) as { classes: string[]; train: number[]; test: number[] };
  const split = (name: 'train' | 'test') => ({
    images: decoded[name].map((_, index) => ({ rgb: path.join(dir, `${name}.rgb`), index, size: 32 })),
    labels: decoded[name],
  });
  return { classes: decoded.classes, train: split('train'), test: split('test') };
}
