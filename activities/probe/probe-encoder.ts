import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { MATRIX_MEDIA_TYPE } from '../../engine/kinds/embed.js';
import { probeKind, type ProbeInputs } from '../../engine/kinds/probe.js';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { fingerprint } from '../cache-keys.js';
import type { HomeLayout } from '../home.js';
import { writeAtomically } from '../host-files.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { StageActivityInput, StageHeartbeat } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { folderOnThisHost } from '../store/folder-input.js';
import { embedWithOnnx, openOnnxEncoder, type OnnxEncoder } from './features-onnx.js';
import { embedWithTorch } from './features-torch.js';
import { fitProbe, type FitResult } from './fit.js';
import { readDataset } from './read-dataset.js';
import { DEFAULT_PYTHON } from './python.js';
import type { ProbeData, ProbeImage } from './layouts.js';

const HEARTBEAT_MS = 1_000;
type Dataset = ProbeInputs['datasets'][number];

/**
 * `probe/encoder`: per dataset, its train and test features (kept in the stage folder
 * under a key of what made them, so a retry never extracts a finished dataset again), then
 * the linear probe and kNN in gpu/probe_fit.py (kept the same way).
 */
export function createProbeEncoder(deps: { store: ArtifactStore; home: HomeLayout; logs: StageLogs }): Implementation<typeof probeKind> {
  return async function probeEncoder(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(probeKind.with, input);
    const where = `stage ${input.stageId} (probe/encoder)`;
    const stageDir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(stageDir, { recursive: true });
    const python = spec.python ?? DEFAULT_PYTHON;
    const progress: StageHeartbeat = { progress: { done: 0, unit: 'images', message: 'starting' } };
    const beat = setInterval(() => ctx.heartbeat(progress), HEARTBEAT_MS);
    const model = typeof spec.model === 'string' ? spec.model : await folderOnThisHost(deps.store, spec.model, stageDir, 'model', where);
    let encoder: OnnxEncoder | undefined;
    const out = { datasets: {} as Record<string, FitResult>, features: {} as Record<string, { train: ArtifactRef; test: ArtifactRef; labels: ArtifactRef }> };
    try {
      const modelKey = spec.features === 'onnx' ? await fingerprint(model) : typeof spec.model === 'string' ? spec.model : spec.model.sha256;
      for (const [i, dataset] of spec.datasets.entries()) {
        const here = `${where}, dataset ${dataset.name} (${dataset.layout}, ${i + 1}/${spec.datasets.length})`;
        const dir = path.join(stageDir, 'datasets', `${dataset.name}-${key(featureKey(spec, dataset, modelKey))}`);
        const report = (message: string, done: number, total?: number) => {
          progress.progress = { done, ...(total !== undefined ? { total } : {}), unit: 'images', message: `${dataset.name} (${i + 1}/${spec.datasets.length}): ${message}` };
        };
        if (!(await exists(path.join(dir, 'labels.json')))) {
          report('reading', 0);
          const root = await folderOnThisHost(deps.store, dataset.root, stageDir, `root-${dataset.name}`, here);
          const data = await readDataset(dataset, root, spec.seed, { logs: deps.logs, input, where: here, python, dir });
          await extractFeatures(data, dir, async (images, file, onBatch) => {
            if (spec.features === 'torch') return embedWithTorch({ ...spec, model }, images, file, { logs: deps.logs, input, where: here, onBatch });
            encoder ??= await openOnnxEncoder({ ...spec, model }, input);
            return embedWithOnnx(encoder, images, file, input, here, onBatch);
          }, (done, total) => report('features', done, total));
        }
        report('linear probe and kNN', 0);
        const fitted = await fitProbe(dir, spec, { logs: deps.logs, input, where: here, python, heartbeat: () => progress });
        out.datasets[dataset.name] = fitted;
        out.features[dataset.name] = await storeFeatures(deps.store, dir, fitted);
      }
    } finally {
      clearInterval(beat);
      await encoder?.session.release().catch(() => undefined);
    }
    const full = Object.fromEntries(spec.datasets.map((d) => [d.name, { layout: d.layout, ...out.datasets[d.name] }]));
    const results = await deps.store.putBytes(JSON.stringify({ settings: settingsOf(spec), datasets: full }), 'application/json');
    const datasets = Object.fromEntries(Object.entries(out.datasets).map(([n, r]) => [n, { linear: r.linear, knn: r.knn, C: r.C, train: r.train, test: r.test, classes: r.classes, dims: r.dims }]));
    return { outputs: { datasets, features: out.features, results }, attempt: ctx.info.attempt };
  };
}

/** What the features of a dataset depend on (not batch size or threads). */
function featureKey(spec: ProbeInputs, d: Dataset, model: string): unknown {
  const root = typeof d.root === 'string' ? path.resolve(d.root) : d.root.sha256;
  const torch = spec.features === 'torch' ? spec.torch : undefined;
  return { name: d.name, layout: d.layout, root, partition: d.layout === 'sun397' ? d.partition : undefined, maxPerClass: d.maxPerClass, seed: d.maxPerClass ? spec.seed : undefined, features: spec.features, model, preprocess: spec.preprocess, torch };
}

const key = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
const exists = (file: string) => fs.access(file).then(() => true, () => false);
const settingsOf = (spec: ProbeInputs) => ({ features: spec.features, model: spec.model, seed: spec.seed, k: spec.k, temperature: spec.temperature, C: spec.C, valFraction: spec.valFraction });

/** The features of a dataset folder into the store, as the stage outputs them. */
export async function storeFeatures(store: ArtifactStore, dir: string, r: { train: number; test: number; dims: number }) {
  const put = async (split: 'train' | 'test', rows: number) => ({ ...(await store.putFile(path.join(dir, `${split}.f32`), MATRIX_MEDIA_TYPE)), counts: { rows, dims: r.dims } });
  return { train: await put('train', r.train), test: await put('test', r.test), labels: await store.putFile(path.join(dir, 'labels.json'), 'application/json') };
}

/** `features.f32` into `train.f32` (the first `trainRows` rows) and `test.f32`. */
async function splitRows(all: string, dims: number, trainRows: number, dir: string): Promise<void> {
  const cut = trainRows * dims * 4;
  const copy = (file: string, range: { start: number; end?: number }) => pipeline(createReadStream(all, range), createWriteStream(path.join(dir, file)));
  await copy('train.f32', { start: 0, end: cut - 1 });
  await copy('test.f32', { start: cut });
  await fs.rm(all);
}

type Embed = (images: ProbeImage[], file: string, onBatch: (done: number) => void) => Promise<number>;

/**
 * Train and test features in one pass (one tool start for torch), split by rows into
 * train.f32 and test.f32, then labels.json, written last: a folder that has it is whole.
 */
async function extractFeatures(data: ProbeData, dir: string, embed: Embed, report: (done: number, total: number) => void): Promise<void> {
  const images = [...data.train.images, ...data.test.images];
  const all = path.join(dir, 'features.f32');
  const dims = await embed(images, all, (done) => report(done, images.length));
  await splitRows(all, dims, data.train.images.length, dir);
  const name = (image: ProbeImage) => ('file' in image ? image.file : `${image.rgb}#${image.index}`);
  const labels = { classes: data.classes, dims, train: data.train.labels, test: data.test.labels, images: { train: data.train.images.map(name), test: data.test.images.map(name) } };
  await writeAtomically(path.join(dir, 'labels.json'), (tmp) => fs.writeFile(tmp, JSON.stringify(labels)));
}
