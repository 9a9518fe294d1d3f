/**
 * pipelines/probe.yaml end to end on a real Temporal dev server with a cpu worker: the
 * default ONNX encoder and scikit-learn (.venv) on small datasets the test writes in the four
 * native layouts from the demo's real photos (test/support/probe-fixtures.ts). Scenarios:
 * - the pipeline validates and plans: probe/encoder and report/table on queue cpu
 * - it runs: both probes beat chance on each dataset, and report/table writes Table 5's
 *   layout with the encoder's row
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, summary, type Harness } from './harness.js';
import { submitPipeline } from '../../cli/submit.js';
import { writeProbeFixtures } from '../support/probe-fixtures.js';

let h: Harness;
let roots: Awaited<ReturnType<typeof writeProbeFixtures>>;

beforeAll(async () => {
  h = await startHarness();
  roots = await writeProbeFixtures(path.join(h.home.root, 'data'), { train: 6, test: 3 });
}, 180_000);
afterAll(() => h?.stop());

describe('pipelines/probe.yaml', () => {
  it('produces Table 5 for the default encoder on the four layouts', async () => {
    const yaml = await fs.readFile('pipelines/probe.yaml', 'utf8');
    const set = { pets_root: roots.pets, sun397_root: roots.sun397, cub_root: roots.cub, cifar100_root: roots.cifar100 };
    const compiled = h.compile(yaml, set);
    expect(Object.values(compiled.stages).map((s) => [s.uses, s.queue])).toEqual([['probe/encoder', 'cpu'], ['report/table', 'cpu']]);
    const done = await h.result(await submitPipeline(h.session, compiled));
    expect(done.state, JSON.stringify(summary(done))).toBe('succeeded');
    const datasets = done.stages.probe!.outputs!.datasets as Record<string, { linear: number; knn: number; train: number; test: number }>;
    expect(Object.keys(datasets)).toEqual(['pets', 'sun397', 'cub', 'cifar100']);
    for (const [name, r] of Object.entries(datasets)) {
      expect({ name, train: r.train, test: r.test }).toEqual({ name, train: 48, test: 24 });
      expect(r.linear, name).toBeGreaterThanOrEqual(50);
      expect(r.knn, name).toBeGreaterThanOrEqual(50);
    }
    const md = (await fs.readFile(done.stages.table!.outputs!.markdown as string, 'utf8')).split('\n');
    expect(md[2]).toBe('| Model | Pets Linear | Pets kNN | SUN397 Linear | SUN397 kNN | CUB Linear | CUB kNN | CIFAR-100 Linear | CIFAR-100 kNN | Mean Linear | Mean kNN |');
    expect(md[4]).toMatch(/^\| MobileNetV2-1\.4 (\| \d+\.\d ){10}\|$/);
    await fs.mkdir('.twinflow/scratch', { recursive: true });
    await fs.writeFile('.twinflow/scratch/probe-table5.md', md.join('\n'));
  });
});
