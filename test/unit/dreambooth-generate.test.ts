/*
 * dreambooth/generate, run through test/fakes/fake-dreambooth-python (a FAKE of gpu/dreambooth.py
 * that checks its command line and jobs file and writes its output layout and progress log;
 * nothing trains; gpu/dreambooth.py itself runs on the toy pipeline in
 * test/python/test_dreambooth.py and dreambooth-generate-real.test.ts):
 * - the command line carries LoRA's defaults (500 steps, lr 1e-4, rank 4, 512 px, 5 images, 50
 *   steps, guidance 7.5, the five templates), full fine-tune's (400, 5e-6), and prior preservation
 *   when asked; each jobs line names 3-5 grounding images that are the instance's own files
 * - the generated manifest and review items have twin/synthesize-variants' shape: generated
 *   images with origin "dreambooth" and a record of prompt, seed and weights; `gen:<sha256>` items
 *   grouped by instance with a real grounding image first; the adapters are one folder artifact
 * - instances go `instancesPerProcess` to a process; heartbeats count instances and carry the
 *   step and loss
 * - cancelling kills the python process group and keeps the finished instances
 * - a crash mid-instance fails retryably with the log tail; the retry trains only the unfinished
 *   instances (a finished one never twice), and a retry after everything finished runs nothing
 * - twin/assemble takes the dreambooth manifest and its decisions as it takes synthesize-variants'
 * - the grounding pick is seeded, sized in [min, max], and ignores the order images are listed in
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { MockActivityEnvironment } from '@temporalio/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { DreamboothImage } from '../../activities/dreambooth/collect.js';
import { folderName, pickGrounding, planJobs } from '../../activities/dreambooth/plan.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../../activities/data/manifest.js';
import type { ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { readTree } from '../../activities/store/tree.js';
import { DREAMBOOTH_SCRIPT, DREAMBOOTH_TEMPLATES, dreamboothInputs } from '../../engine/kinds/dreambooth.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome } from '../support/activity-env.js';
import { isAlive } from '../support/processes.js';

const FAKE = path.resolve(import.meta.dirname, '../fakes/fake-dreambooth-python');
const env = activitiesInTempHome('dreambooth');
let store: ArtifactStore;
let manifest: ArtifactRef;
let rows: ManifestRow[];

interface Out {
  generated: ArtifactRef; items: ArtifactRef; adapters?: ArtifactRef;
  counts: { instances: number; generated: number; skipped: number; resumed: number; dropped: number };
}
type GeneratedRow = Omit<ManifestRow, 'images'> & { images: DreamboothImage[] };

async function shot(color: [number, number, number], role: ManifestImage['role']): Promise<ManifestImage & { sha256: string }> {
  const jpeg = await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: color[0], g: color[1], b: color[2] } } }).jpeg().toBuffer();
  return { role, sha256: (await store.putBytes(jpeg)).sha256, width: 48, height: 40 };
}
const row = (id: string, category: string, images: ManifestImage[]): ManifestRow => ({ instance_id: id, asins: [id], title: `Product ${id}`, category, images });

beforeAll(async () => {
  store = new ArtifactStore(env.home.artifactsDir);
  const shots = async (n: number, base: number) => Promise.all(Array.from({ length: n }, (_, i) => shot([base, 20 * i, 90], i % 2 ? 'review' : 'listing')));
  rows = [
    row('mug-red', 'mug', await shots(6, 200)),
    row('no-images', 'mug', []),
    row('bottle/green', 'bottle', await shots(2, 60)),
    row('vase-grey', 'vase', await shots(4, 140)),
  ];
  manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
});

const input = (stageId: string, w: Record<string, unknown>): StageActivityInput => ({ runId: 'r1', stageId, uses: 'dreambooth/generate', kindVersion: '1', with: w as JsonObject, shellEnv: {} });
const knobs = (stageId: string, extra: Record<string, string> = {}) => ({
  FAKE_DREAMBOOTH_CALLS: path.join(env.home.root, `${stageId}.calls`), FAKE_DREAMBOOTH_TRAINED: path.join(env.home.root, `${stageId}.trained`),
  FAKE_DREAMBOOTH_ONCE_DIR: path.join(env.home.root, `${stageId}.once`), ...extra,
});
const generate = (stageId: string, w: Record<string, unknown> = {}, attempt = 1, beats?: unknown[]) => {
  const activityEnv = new MockActivityEnvironment({ attempt });
  if (beats) activityEnv.on('heartbeat', (d: unknown) => beats.push(d));
  return activityEnv.run(env.acts['dreambooth/generate'], input(stageId, { instances: manifest, python: FAKE, ...w })) as Promise<StageActivityResult>;
};
const calls = async (stageId: string) => (await fs.readFile(path.join(env.home.root, `${stageId}.calls`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; instances: string[] });
const trained = async (stageId: string) => (await fs.readFile(path.join(env.home.root, `${stageId}.trained`), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
const flag = (argv: string[], name: string) => argv[argv.indexOf(name) + 1];
/** The stage's output folder (`output-<settings digest>`): the one its calls wrote to. */
const outputOf = async (stageId: string) => flag((await calls(stageId))[0]!.argv, '--output')!;

describe('dreambooth/generate', () => {
  it('fine-tunes each instance with LoRA by default and writes synthesize-variants\' manifest and review items, with origin dreambooth', async () => {
    const beats: Array<{ progress?: { done: number; total?: number; unit?: string; message?: string }; metrics?: Record<string, number> }> = [];
    const out = (await generate('a', { steps: 6, env: knobs('a', { FAKE_DREAMBOOTH_STEP_S: '0.25' }) }, 1, beats)).outputs as unknown as Out;
    const [call, ...more] = await calls('a');
    expect(more).toEqual([]);
    expect(call!.instances).toEqual(['mug-red', 'bottle/green', 'vase-grey']);
    const argv = call!.argv;
    expect(argv[0]).toBe(DREAMBOOTH_SCRIPT);
    expect(Object.fromEntries(['--pretrained', '--finetune', '--max-train-steps', '--learning-rate', '--rank', '--resolution', '--train-batch-size', '--identifier',
      '--num-images', '--inference-steps', '--guidance-scale', '--mixed-precision'].map((f) => [f, flag(argv, f)]))).toEqual({
      '--pretrained': 'stable-diffusion-v1-5/stable-diffusion-v1-5', '--finetune': 'lora', '--max-train-steps': '6', '--learning-rate': '0.0001', '--rank': '4',
      '--resolution': '512', '--train-batch-size': '1', '--identifier': 'sks', '--num-images': '5', '--inference-steps': '50', '--guidance-scale': '7.5', '--mixed-precision': 'fp16',
    });
    expect(argv.filter((_, i) => argv[i - 1] === '--template')).toEqual([...DREAMBOOTH_TEMPLATES]);
    expect(argv).not.toContain('--with-prior-preservation');
    expect(argv).toContain('--keep-weights');

    // Each jobs line grounds the instance on 3-5 of its own images (fewer if it has fewer), as files of the store.
    const lines = (await fs.readFile(flag(argv, '--instances')!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { instance: string; dir: string; images: string[]; category: string });
    const own = async (id: string) => Promise.all(rows.find((r) => r.instance_id === id)!.images.map((i) => store.file(i.sha256!)));
    for (const line of lines) {
      const mine = await own(line.instance);
      expect(line.images.length).toBe(Math.min(mine.length, line.images.length));
      expect(line.images.length).toBeGreaterThanOrEqual(Math.min(3, mine.length));
      expect(line.images.length).toBeLessThanOrEqual(5);
      for (const f of line.images) expect(mine).toContain(f);
    }
    expect(lines.find((l) => l.instance === 'bottle/green')!.images).toHaveLength(2);
    expect(lines.map((l) => l.dir)).toEqual(['mug-red', folderName('bottle/green'), 'vase-grey']);
    expect(folderName('bottle/green')).toMatch(/^bottle_green-[0-9a-f]{12}$/);

    expect(out.counts).toEqual({ instances: 3, generated: 15, skipped: 1, resumed: 0, dropped: 0 });
    const generated = await jsonlRows<GeneratedRow>(store, out.generated);
    expect(generated.map((r) => r.instance_id)).toEqual(['mug-red', 'bottle/green', 'vase-grey']);
    expect(out.generated.counts).toEqual({ instances: 3, images: 15 });
    const mug = generated[0]!;
    expect(Object.keys(mug).sort()).toEqual(['asins', 'category', 'images', 'instance_id', 'title']);
    expect(mug.images.map((i) => i.dreambooth.prompt)).toEqual(DREAMBOOTH_TEMPLATES.map((t) => t.replace('{category}', 'mug')));
    const realOfMug = rows[0]!.images.map((i) => i.sha256);
    for (const image of mug.images) {
      expect(image).toMatchObject({ role: 'generated', origin: 'dreambooth', width: 8, height: 8 });
      expect(await store.has(image.sha256)).toBe(true);
      expect(image.dreambooth).toMatchObject({ model: 'stable-diffusion-v1-5/stable-diffusion-v1-5', finetune: 'lora', steps: 6, instancePrompt: 'a photo of sks mug' });
      expect(image.dreambooth.grounding.every((g) => realOfMug.includes(g))).toBe(true);
      expect(image.dreambooth.grounding).toContain(image.dreambooth.source);
      expect(image.dreambooth.weights).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(mug.images.map((i) => i.dreambooth.seed)).size).toBe(5);

    const items = await jsonlRows<ReviewItem>(store, out.items);
    expect(items).toHaveLength(15);
    const all = generated.flatMap((r) => r.images.map((image) => ({ r, image })));
    items.forEach((item, k) => {
      const { r, image } = all[k]!;
      expect(item.id).toBe(`gen:${image.sha256}`);
      expect(item.group).toBe(r.instance_id);
      expect(item.images[0]).toMatchObject({ sha256: image.dreambooth.source, instance_id: r.instance_id });
      expect(['listing', 'review']).toContain(item.images[0]!.role);
      expect(item.images[1]).toEqual({ sha256: image.sha256, instance_id: r.instance_id, role: 'generated' });
      expect(item.metadata).toMatchObject({ instance_id: r.instance_id, category: r.category, prompt: image.dreambooth.prompt, dreambooth: image.dreambooth });
    });

    const tree = await readTree(store, out.adapters!);
    expect(tree.files.map((f) => f.path)).toEqual([
      `${folderName('bottle/green')}/pytorch_lora_weights.safetensors`, 'mug-red/pytorch_lora_weights.safetensors', 'vase-grey/pytorch_lora_weights.safetensors',
    ]);
    expect(tree.files.find((f) => f.path.startsWith('mug-red'))!.sha256).toBe(mug.images[0]!.dreambooth.weights);

    const progress = beats.map((b) => b.progress).filter((p) => p !== undefined);
    expect(progress.every((p) => p.total === 3 && p.unit === 'instances')).toBe(true);
    expect(progress.some((p) => /^(mug-red|bottle\/green|vase-grey): step \d\/6, loss \d\.\d{4}$/.test(p.message ?? ''))).toBe(true);
    expect(beats.some((b) => typeof b.metrics?.loss === 'number' && typeof b.metrics.step === 'number')).toBe(true);
  });

  it('sends instancesPerProcess instances to each process, one after another', async () => {
    await generate('b', { steps: 2, perInstance: 2, instancesPerProcess: 2, env: knobs('b') });
    expect((await calls('b')).map((c) => c.instances)).toEqual([['mug-red', 'bottle/green'], ['vase-grey']]);
  });

  it('passes full fine-tune\'s defaults and prior preservation, and stores no weights with keepWeights false', async () => {
    const out = (await generate('c', { finetune: 'full', priorPreservation: true, classImages: 20, keepWeights: false, perInstance: 2, maxInstances: 1, env: knobs('c') })).outputs as unknown as Out;
    const [{ argv, instances }] = (await calls('c')) as [{ argv: string[]; instances: string[] }];
    expect(instances).toEqual(['mug-red']);
    expect([flag(argv, '--finetune'), flag(argv, '--max-train-steps'), flag(argv, '--learning-rate')]).toEqual(['full', '400', '0.000005']);
    expect(argv).toEqual(expect.arrayContaining(['--with-prior-preservation', '--prior-loss-weight', '1', '--num-class-images', '20', '--no-keep-weights']));
    expect(out.adapters).toBeUndefined();
    const [mug] = await jsonlRows<GeneratedRow>(store, out.generated);
    expect(mug!.images.map((i) => i.dreambooth.weights)).toEqual([null, null]);
  });

  it('retries a crash mid-instance by training only the unfinished instances, and never trains a finished one again', async () => {
    const w = { steps: 4, perInstance: 2, env: knobs('d', { FAKE_DREAMBOOTH_CRASH_AT: 'bottle/green:3' }) };
    const err = await failure(generate('d', w));
    expect(err.type).toBe('StageFailed');
    expect(err.nonRetryable).toBeFalsy();
    expect(err.message).toMatch(/^stage d \(dreambooth\/generate\): .*gpu\/dreambooth.py exited with code 1; last \d+ lines of output:\n[^]*fake crash at step 3 of bottle\/green/);
    const out = (await generate('d', w, 2)).outputs as unknown as Out;
    expect(await trained('d')).toEqual(['mug-red', 'bottle/green', 'bottle/green', 'vase-grey']);
    expect((await calls('d')).map((c) => c.instances)).toEqual([['mug-red', 'bottle/green', 'vase-grey'], ['bottle/green', 'vase-grey']]);
    expect(out.counts).toMatchObject({ instances: 3, generated: 6, resumed: 1 });
    // The half-written image of the crashed attempt is gone: every generated image is a whole PNG.
    for (const r of await jsonlRows<GeneratedRow>(store, out.generated)) {
      for (const image of r.images) expect((await sharp(await store.file(image.sha256)).metadata()).format).toBe('png');
    }

    const again = (await generate('d', w, 3)).outputs as unknown as Out;
    expect((await calls('d'))).toHaveLength(2);
    expect(again.counts).toMatchObject({ instances: 3, generated: 6, resumed: 3 });
    expect(again.generated.sha256).toBe(out.generated.sha256);
  });

  it("kills the python process group when the stage is cancelled, and keeps the finished instances for a retry", async () => {
    const pidFile = path.join(env.home.root, 'dreambooth.pid');
    const activityEnv = new MockActivityEnvironment({ attempt: 1 });
    const running = activityEnv.run(env.acts['dreambooth/generate'], input('g', {
      instances: manifest, python: FAKE, steps: 40, perInstance: 1, env: knobs('g', { FAKE_DREAMBOOTH_STEP_S: '0.05', FAKE_DREAMBOOTH_PID_FILE: pidFile }),
    }));
    // Cancelled once the second instance trains: the log says when, no timer.
    const log = path.join(env.home.stageDir('r1', 'g'), 'progress.jsonl');
    let pid = 0;
    while (!pid || !(await fs.readFile(log, 'utf8').catch(() => '')).includes('"instance":"bottle/green","step"')) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    activityEnv.cancel();
    const err = await failure(running);
    expect(err.message).toMatch(/cancelled during bottle\/green: step \d+\/40, loss [\d.]+; finished instances stay in .*output-[0-9a-f]{16}, and a retry trains only the rest/);
    await expect.poll(() => isAlive(pid), { timeout: 10_000 }).toBe(false);
    expect(await fs.stat(path.join(await outputOf('g'), 'mug-red', 'done.json')).then(() => true, () => false)).toBe(true);
  });

  it('trains every instance again when a retry changes the settings, in a folder of its own', async () => {
    const w = { steps: 2, perInstance: 1, env: knobs('h') };
    await generate('h', w);
    const out = (await generate('h', { ...w, steps: 3 }, 2)).outputs as unknown as Out;
    expect(await trained('h')).toEqual(['mug-red', 'bottle/green', 'vase-grey', 'mug-red', 'bottle/green', 'vase-grey']);
    const [first, second] = (await calls('h')).map((c) => flag(c.argv, '--output'));
    expect(first).not.toBe(second);
    expect(out.counts.resumed).toBe(0);
    const [mug] = await jsonlRows<GeneratedRow>(store, out.generated);
    expect(mug!.images[0]!.dreambooth.steps).toBe(3);
    // The same settings again (more instances per process changes nothing they make): nothing trains.
    const again = (await generate('h', { ...w, steps: 3, instancesPerProcess: 1 }, 3)).outputs as unknown as Out;
    expect(await calls('h')).toHaveLength(2);
    expect(again.counts.resumed).toBe(3);
  });

  it('drops an image that repeats an earlier one byte for byte, and counts it', async () => {
    const out = (await generate('e', { steps: 1, perInstance: 3, maxInstances: 1, env: knobs('e', { FAKE_DREAMBOOTH_SAME: '1' }) })).outputs as unknown as Out;
    expect(out.counts).toMatchObject({ instances: 1, generated: 1, dropped: 2 });
  });

  it('feeds twin/assemble the way twin/synthesize-variants does: accepted dreambooth images become generated negatives', async () => {
    const out = (await generate('f', { steps: 1, perInstance: 2, env: knobs('f') })).outputs as unknown as Out;
    const decided = await new MockActivityEnvironment({ attempt: 1 }).run(env.acts['core/decide'], {
      runId: 'r1', stageId: 'decide', uses: 'core/decide', kindVersion: '1', shellEnv: {},
      with: { items: out.items, policy: { name: 'first', accept: 'all', top: 1 } } as unknown as JsonObject,
    }) as StageActivityResult;
    const assembled = await new MockActivityEnvironment({ attempt: 1 }).run(env.acts['twin/assemble'], {
      runId: 'r1', stageId: 'assemble', uses: 'twin/assemble', kindVersion: '1', shellEnv: {},
      with: { instances: manifest, generated: out.generated, generatedDecisions: decided.outputs.decisions, evalInstances: 0, exports: ['rows'] } as unknown as JsonObject,
    }) as StageActivityResult;
    const stats = JSON.parse(await fs.readFile(path.join(assembled.outputs.dataset as string, 'stats.json'), 'utf8')) as { generated: Record<string, number>; images: { all: { generated: number } } };
    expect(stats.generated).toEqual({ items: 6, accepted: 3, rejected: 3, undecided: 0 });
    expect(stats.images.all.generated).toBe(3);
    expect((assembled.outputs.counts as { train: Record<string, number> }).train['generated-negative']).toBeGreaterThan(0);
  });

  it('refuses a template without {category} and a grounding range upside down', () => {
    expect(dreamboothInputs.safeParse({ instances: manifest, templates: ['an image'] }).success).toBe(false);
    expect(dreamboothInputs.safeParse({ instances: manifest, grounding: { min: 5, max: 3 } }).success).toBe(false);
  });
});

describe('the grounding pick', () => {
  const real = Array.from({ length: 9 }, (_, i) => ({ role: 'listing' as const, sha256: i.toString(16).padStart(64, '0') }));
  const spec = (seed: number, min = 3, max = 5) => ({ seed, grounding: { min, max } });

  it('draws between min and max distinct images, the same ones for the same seed, other ones for another', () => {
    const sizes = new Set<number>();
    for (let s = 0; s < 40; s++) {
      const pick = pickGrounding(real, spec(s), 'mug');
      sizes.add(pick.length);
      expect(new Set(pick.map((p) => p.sha256)).size).toBe(pick.length);
      expect(pickGrounding(real, spec(s), 'mug')).toEqual(pick);
    }
    expect([...sizes].sort()).toEqual([3, 4, 5]);
    expect(pickGrounding(real, spec(1), 'mug')).not.toEqual(pickGrounding(real, spec(2), 'mug'));
    expect(pickGrounding(real.slice(0, 2), spec(0), 'mug')).toHaveLength(2);
  });

  it('ignores the order an instance lists its images in', () => {
    const ref = dreamboothInputs.parse({ instances: manifest, seed: 3 });
    const input = { runId: 'r', stageId: 's', uses: 'dreambooth/generate', kindVersion: '1', with: {}, shellEnv: {} };
    const forward = planJobs([row('x', 'mug', real)], ref, input).jobs[0]!;
    const backward = planJobs([row('x', 'mug', [...real].reverse())], ref, input).jobs[0]!;
    expect(backward.grounding).toEqual(forward.grounding);
    expect(backward.seed).toBe(forward.seed);
  });
});
