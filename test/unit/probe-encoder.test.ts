/*
 * probe/encoder for real on CPU: the default ONNX encoder (MobileNetV2Mid), scikit-learn in
 * .venv, on small datasets the test writes in each native layout from the demo's real photos
 * (eight classes, test/support/probe-fixtures.ts):
 * - Pets, SUN397, CUB-200-2011 and CIFAR-100 are read in their own layouts; the linear probe
 *   and kNN beat chance (12.5%) by a wide margin on each
 * - kNN's predictions equal a brute-force reference computed here from the stored features
 *   (cosine, the k nearest, votes exp(cosine / T), ties to the lower class)
 * - the same inputs and seed give the same numbers and the same feature bytes; maxPerClass
 *   draws its subset by the seed
 * - a retry after a failing dataset does not extract a finished one again (its images are gone)
 * - a folder that is not in its layout, a malformed index line and a corrupt pickle fail
 *   without retries, naming the file and the expected layout
 * - torch features through gpu/probe_features.py with the toy Qwen2.5-VL on CPU (.venv/verl)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { readMatrix } from '../../activities/embed/matrix.js';
import { checkPipelineText } from '../../engine/compile.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { writeCifar100, writePets, writeProbeFixtures } from '../support/probe-fixtures.js';

type Numbers = { linear: number; knn: number; C: number; train: number; test: number; classes: number; dims: number };
type Out = { datasets: Record<string, Numbers>; features: Record<string, { train: ArtifactRef; test: ArtifactRef; labels: ArtifactRef }>; results: ArtifactRef };
type Labels = { classes: string[]; dims: number; train: number[]; test: number[] };

const env = activitiesInTempHome('probe');
const probe = async (stageId: string, w: Record<string, unknown>) => (await runStage(env.acts['probe/encoder'], 'probe/encoder', w, stageId)).outputs as unknown as Out;
let roots: Awaited<ReturnType<typeof writeProbeFixtures>>;
let all: Out;
const datasets = () => (['pets', 'sun397', 'cub', 'cifar100'] as const).map((layout) => ({ name: layout, layout, root: roots[layout] }));

beforeAll(async () => {
  roots = await writeProbeFixtures(path.join(env.home.root, 'data'), { train: 8, test: 4 });
  all = await probe('all', { datasets: datasets(), C: [1, 10, 100] });
}, 300_000);

/** kNN by brute force from the stored features: float64 cosine, k nearest (ties to the lower row), votes exp(cos / T), ties to the lower class. */
async function bruteForceKnn(store: ArtifactStore, f: Out['features'][string], k: number, temperature: number): Promise<number[]> {
  const labels = JSON.parse(await fs.readFile(await store.file(f.labels), 'utf8')) as Labels;
  const unit = async (ref: ArtifactRef) => {
    const m = await readMatrix(await store.file(ref), labels.dims);
    return Array.from({ length: m.rows }, (_, i) => {
      const row = Array.from(m.data.subarray(i * m.dims, (i + 1) * m.dims), Number);
      const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
      return row.map((v) => v / norm);
    });
  };
  const train = await unit(f.train);
  const test = await unit(f.test);
  return test.map((q) => {
    const sims = train.map((t, i) => ({ i, s: t.reduce((s, v, j) => s + v * q[j]!, 0) })).sort((a, b) => b.s - a.s || a.i - b.i).slice(0, k);
    const votes = new Map<number, number>();
    for (const { i, s } of sims) votes.set(labels.train[i]!, (votes.get(labels.train[i]!) ?? 0) + Math.exp(s / temperature));
    return [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
  });
}

describe('probe/encoder', () => {
  it('reads each native layout and both probes beat chance by a wide margin', () => {
    expect(Object.keys(all.datasets)).toEqual(['pets', 'sun397', 'cub', 'cifar100']);
    for (const [name, r] of Object.entries(all.datasets)) {
      expect({ name, train: r.train, test: r.test, dims: r.dims }).toEqual({ name, train: 64, test: 32, dims: 1792 });
      expect(r.classes, name).toBe(name === 'cifar100' ? 100 : 8);
      expect(r.linear, `${name} linear`).toBeGreaterThanOrEqual(50);
      expect(r.knn, `${name} kNN`).toBeGreaterThanOrEqual(50);
      expect([1, 10, 100]).toContain(r.C);
    }
  });

  it("gives kNN predictions equal to a brute-force reference on the stored features", async () => {
    const store = new ArtifactStore(env.home.artifactsDir);
    const results = JSON.parse(await fs.readFile(await store.file(all.results), 'utf8')) as { datasets: Record<string, { predictions: { knn: number[] }; knn: number }> };
    for (const name of Object.keys(all.datasets)) {
      const f = all.features[name]!;
      const labels = JSON.parse(await fs.readFile(await store.file(f.labels), 'utf8')) as Labels;
      const reference = await bruteForceKnn(store, f, 20, 0.07);
      expect(results.datasets[name]!.predictions.knn, name).toEqual(reference);
      const correct = reference.filter((p, i) => p === labels.test[i]).length;
      expect(all.datasets[name]!.knn, name).toBe(100 * correct / labels.test.length);
    }
  });

  it('gives the same numbers and feature bytes for the same inputs and seed; maxPerClass draws by the seed', async () => {
    const again = await probe('again', { datasets: datasets().slice(0, 2), C: [1, 10, 100] });
    expect(again.datasets.pets).toEqual(all.datasets.pets);
    expect(again.datasets.sun397).toEqual(all.datasets.sun397);
    expect(again.features.pets!.train.sha256).toBe(all.features.pets!.train.sha256);
    const capped = (seed: number, id: string) => probe(id, { datasets: [{ name: 'pets', layout: 'pets', root: roots.pets, maxPerClass: 5 }], C: [1], seed });
    const [a, b, c] = [await capped(0, 's0'), await capped(0, 's0b'), await capped(1, 's1')];
    expect(a.datasets.pets!.train).toBe(40);
    expect(a.features.pets!.train.sha256).toBe(b.features.pets!.train.sha256);
    expect(c.features.pets!.train.sha256).not.toBe(a.features.pets!.train.sha256);
  });

  it('does not extract a finished dataset again when a retry follows a failing one', async () => {
    const pets = await writePets(path.join(env.home.root, 'retry-pets'), { train: 4, test: 2, seed: 7 });
    const cifar = path.join(env.home.root, 'retry-cifar');
    const w = { datasets: [{ name: 'pets', layout: 'pets', root: pets }, { name: 'cifar', layout: 'cifar100', root: cifar }], C: [1] };
    await fs.mkdir(cifar, { recursive: true });
    const first = await failure(probe('retry', w));
    expect(first.message).toMatch(/dataset cifar \(cifar100, 2\/2\): .*retry-cifar\/meta is missing: expected CIFAR-100's python version/);
    await fs.rm(path.join(pets, 'images'), { recursive: true });
    await writeCifar100(cifar, { train: 4, test: 2, seed: 8 });
    const out = await probe('retry', w);
    expect(out.datasets.pets!.train).toBe(32);
    expect(out.datasets.cifar!.test).toBe(16);
    const fresh = await failure(probe('retry-fresh', w));
    expect(fresh.message).toMatch(/cannot read the image .*retry-pets\/images\/\w+_\d+\.jpg/);
  });

  it('fails without retries on a folder not in its layout, naming the file and what to do', async () => {
    const bad = path.join(env.home.root, 'bad');
    await fs.mkdir(path.join(bad, 'annotations'), { recursive: true });
    await fs.writeFile(path.join(bad, 'annotations', 'trainval.txt'), 'Abyssinian_1 1 1 1\n');
    const missing = await failure(probe('bad1', { datasets: [{ name: 'p', layout: 'pets', root: bad }] }));
    expect(missing.type).toBe('InvalidStageInput');
    expect(missing.nonRetryable).toBe(true);
    expect(missing.message).toMatch(/annotations\/test\.txt is missing; the layout expects Oxford-IIIT Pets: annotations\/trainval\.txt, annotations\/test\.txt/);
    await fs.writeFile(path.join(bad, 'annotations', 'test.txt'), 'Abyssinian_2 one 1 1\n');
    const line = await failure(probe('bad2', { datasets: [{ name: 'p', layout: 'pets', root: bad }] }));
    expect(line.message).toMatch(/annotations\/test\.txt:1: expected "Image CLASS-ID SPECIES BREED-ID"/);
    const sun = await failure(probe('bad3', { datasets: [{ name: 's', layout: 'sun397', root: bad, partition: 3 }] }));
    expect(sun.message).toMatch(/no Training_03\.txt in .*Partitions/);
    const cifar = path.join(env.home.root, 'bad-cifar');
    await writeCifar100(cifar, { train: 2, test: 1, seed: 9 });
    await fs.writeFile(path.join(cifar, 'cifar-100-python', 'train'), 'not a pickle');
    const pickle = await failure(probe('bad4', { datasets: [{ name: 'c', layout: 'cifar100', root: cifar }] }));
    expect(pickle.type).toBe('InvalidStageInput');
    expect(pickle.message).toMatch(/cifar-100-python\/train is not a readable pickle/);
  });

  it('goes to queue gpu for torch features and cpu otherwise', () => {
    const yaml = (features: string) => `name: p\nstages:\n  probe:\n    uses: probe/encoder\n    with: { features: ${features}, datasets: [{ name: pets, layout: pets, root: /data/pets }] }\n`;
    expect(checkPipelineText(yaml('torch'), 'p.yaml').pipeline!.stages.probe!.queue).toBe('gpu');
    expect(checkPipelineText(yaml('onnx'), 'p.yaml').pipeline!.stages.probe!.queue).toBe('cpu');
  });
});

const VERL_PYTHON = path.resolve(import.meta.dirname, '../../.venv/verl/bin/python');
const hasTorch = await fs.access(VERL_PYTHON).then(() => true, () => false);

describe.skipIf(!hasTorch)('probe/encoder with torch features (toy Qwen2.5-VL on CPU, .venv/verl)', () => {
  it("probes the toy model's vision tower through gpu/probe_features.py", async () => {
    const model = path.join(env.home.root, 'toy-qwen');
    const { execa } = await import('execa');
    await execa(VERL_PYTHON, [path.resolve(import.meta.dirname, '../../gpu/toy_qwen2_5_vl.py'), model]);
    const out = await probe('torch', {
      features: 'torch', model, torch: { python: VERL_PYTHON, device: 'cpu', dtype: 'float32' }, batchSize: 8, C: [1],
      datasets: [{ name: 'pets', layout: 'pets', root: roots.pets, maxPerClass: 3 }, { name: 'cifar', layout: 'cifar100', root: roots.cifar100, maxPerClass: 3 }],
    });
    expect(out.datasets.pets).toMatchObject({ train: 24, test: 24, dims: 64 });
    expect(out.datasets.cifar).toMatchObject({ train: 24, test: 24, dims: 64 });
    expect(out.features.pets!.train.bytes).toBe(24 * 64 * 4);
  });
});
