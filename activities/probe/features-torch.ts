import fs from 'node:fs/promises';
import type { ProbeInputs } from '../../engine/kinds/probe.js';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import type { ProbeImage } from './layouts.js';
import { toolOutputInvalid } from '../failures.js';
import { probeScript, runProbePython } from './python.js';

/**
 * Every image's features from a VLM's vision tower (gpu/probe_features.py on this host's
 * torch), in order, to `out`; returns the feature width. Progress lines become `onBatch`.
 */
export async function embedWithTorch(
  spec: Pick<ProbeInputs, 'torch' | 'batchSize'> & { model: string },
  images: readonly ProbeImage[],
  out: string,
  run: { logs: StageLogs; input: StageActivityInput; where: string; onBatch: (done: number) => void },
): Promise<number> {
  const list = `${out}.images.jsonl`;
  await fs.writeFile(list, images.map((image) => `${JSON.stringify(image)}\n`).join(''));
  const last = await runProbePython(run.logs, run.input, run.where, {
    what: 'gpu/probe_features.py',
    python: spec.torch.python,
    argv: [probeScript('probe_features.py'), spec.model, list, out, '--device', spec.torch.device, '--dtype', spec.torch.dtype,
      '--batch-size', String(spec.batchSize), '--max-pixels', String(spec.torch.maxPixels)],
    onLine: (line) => {
      const m = /^progress (\d+)\/\d+$/.exec(line);
      if (m) run.onBatch(Number(m[1]));
    },
  });
  let dims: unknown;
  try {
    dims = (JSON.parse(last) as { dims?: unknown }).dims;
  } catch {
    dims = undefined;
  }
  if (typeof dims !== 'number') throw toolOutputInvalid(`${run.where}: gpu/probe_features.py ended without its {"rows", "dims"} line (last line: ${last})`);
  return dims;
}
