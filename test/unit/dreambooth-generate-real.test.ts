/*
 * dreambooth/generate on the REAL gpu/dreambooth.py (torch, diffusers, accelerate, peft) on CPU,
 * with gpu/toy_stable_diffusion.py's toy pipeline (random weights, built offline). OPT-IN:
 * skipped unless TWINFLOW_DREAMBOOTH_PYTHON names a Python that has them (docs/dreambooth-cpu-check.md):
 * - two instances, three LoRA steps each at 32x32, two images each: the stage succeeds; every step
 *   of both is in the progress log with a finite loss; the adapters output holds one
 *   pytorch_lora_weights.safetensors per instance, and each loads into the toy pipeline with
 *   load_lora_weights; every generated image is a 32x32 PNG in the store
 * - the process killed in the second instance's training (a real exit, from inside its optimizer
 *   step) fails retryably; the retry trains only the second instance, and the first keeps its images
 *
 *   TWINFLOW_DREAMBOOTH_PYTHON=.venv/verl/bin/python npx vitest run test/unit/dreambooth-generate-real.test.ts
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { DreamboothImage } from '../../activities/dreambooth/collect.js';
import { MANIFEST_MEDIA_TYPE, type ManifestRow } from '../../activities/data/manifest.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { pullTree } from '../../activities/store/tree.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome } from '../support/activity-env.js';

const PYTHON = process.env.TWINFLOW_DREAMBOOTH_PYTHON;
const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const env = activitiesInTempHome('dreambooth-real');
let store: ArtifactStore;
let manifest: ArtifactRef;
let toy: string;
let python: string;

// Put on PYTHONPATH as sitecustomize: the process dies once, inside the Nth optimizer step of the run (os._exit, no cleanup).
const CRASH_HOOK = `import os
marker, at = os.environ.get("TWINFLOW_TEST_CRASH_ONCE"), int(os.environ.get("TWINFLOW_TEST_CRASH_AT_STEP", "0"))
if marker and not os.path.exists(marker):
    import torch
    step, calls = torch.optim.AdamW.step, [0]
    def crashing_step(self, *a, **k):
        calls[0] += 1
        if calls[0] == at:
            open(marker, "w").close()
            print(f"twinflow test: crashing in optimizer step {at}", flush=True)
            os._exit(1)
        return step(self, *a, **k)
    torch.optim.AdamW.step = crashing_step
`;

const LOAD_CHECK = `import json, sys
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1])
for folder in sys.argv[2:]:
    pipe.load_lora_weights(folder, weight_name="pytorch_lora_weights.safetensors", adapter_name=folder.rsplit("/", 1)[-1].replace(".", "_"))
print(json.dumps({"adapters": sorted(pipe.get_list_adapters().get("unet", []))}))
`;

type GeneratedRow = Omit<ManifestRow, 'images'> & { images: DreamboothImage[] };
interface Out { generated: ArtifactRef; items: ArtifactRef; adapters?: ArtifactRef; counts: Record<string, number> }
const pyEnv = (extra: Record<string, string> = {}) => ({
  HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', HF_HOME: path.join(env.home.root, 'hf'), OMP_NUM_THREADS: '1', ...extra,
});

describe.skipIf(!PYTHON)('dreambooth/generate on the real gpu/dreambooth.py (CPU, toy Stable Diffusion)', () => {
  beforeAll(async () => {
    python = PYTHON!.includes('/') ? path.resolve(PYTHON!) : PYTHON!;
    store = new ArtifactStore(env.home.artifactsDir);
    toy = path.join(env.home.root, 'toy-sd');
    await run(python, [path.join(ROOT, 'gpu/toy_stable_diffusion.py'), toy], { env: { ...process.env, ...pyEnv() } });
    const shot = async (r: number, g: number) =>
      ({ role: 'listing' as const, sha256: (await store.putBytes(await sharp({ create: { width: 40, height: 36, channels: 3, background: { r, g, b: 80 } } }).jpeg().toBuffer())).sha256 });
    const rows: ManifestRow[] = [
      { instance_id: 'mug-red', asins: ['mug-red'], title: 'Red mug', category: 'mug', images: [await shot(200, 30), await shot(190, 60), await shot(210, 10)] },
      { instance_id: 'vase-blue', asins: ['vase-blue'], title: 'Blue vase', category: 'vase', images: [await shot(20, 40), await shot(30, 90)] },
    ];
    manifest = await store.putBytes(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', MANIFEST_MEDIA_TYPE);
  }, 300_000);

  const onCpu = (extraEnv: Record<string, string> = {}) => ({
    instances: manifest, model: toy, python, precision: 'no', resolution: 32, steps: 3, perInstance: 2, inferenceSteps: 2, env: pyEnv(extraEnv),
  });
  const generate = (stageId: string, w: Record<string, unknown>, attempt = 1) => {
    const input: StageActivityInput = { runId: 'r1', stageId, uses: 'dreambooth/generate', kindVersion: '1', with: w as JsonObject, shellEnv: {} };
    return new MockActivityEnvironment({ attempt }).run(env.acts['dreambooth/generate'], input) as Promise<StageActivityResult>;
  };
  const outputOf = async (stageId: string) => {
    const names = (await fs.readdir(env.home.stageDir('r1', stageId))).filter((n) => n.startsWith('output-'));
    expect(names).toHaveLength(1);
    return path.join(env.home.stageDir('r1', stageId), names[0]!);
  };
  const progress = async (stageId: string) => (await fs.readFile(path.join(env.home.stageDir('r1', stageId), 'progress.jsonl'), 'utf8'))
    .trim().split('\n').map((l) => JSON.parse(l) as { event: string; instance: string; step?: number; loss?: number });

  it('trains LoRA adapters that load, and stores 32x32 images, with finite losses at every step', async () => {
    const out = (await generate('a', onCpu())).outputs as unknown as Out;
    expect(out.counts).toMatchObject({ instances: 2, generated: 4, resumed: 0 });
    const steps = (await progress('a')).filter((e) => e.event === 'step');
    expect(steps.map((e) => `${e.instance}:${e.step}`)).toEqual(['mug-red:1', 'mug-red:2', 'mug-red:3', 'vase-blue:1', 'vase-blue:2', 'vase-blue:3']);
    for (const e of steps) expect(Number.isFinite(e.loss)).toBe(true);
    for (const row of await jsonlRows<GeneratedRow>(store, out.generated)) {
      for (const image of row.images) {
        expect(await sharp(await store.file(image.sha256)).metadata()).toMatchObject({ format: 'png', width: 32, height: 32 });
      }
    }
    const adapters = path.join(env.home.root, 'adapters-a');
    await pullTree(store, out.adapters!, adapters);
    const loaded = await run(python, ['-c', LOAD_CHECK, toy, path.join(adapters, 'mug-red'), path.join(adapters, 'vase-blue')], { env: { ...process.env, ...pyEnv() } });
    expect(JSON.parse(loaded.stdout.trim().split('\n').at(-1)!)).toEqual({ adapters: ['mug-red', 'vase-blue'] });
  }, 300_000);

  it('retries a process killed in the second instance by training only that instance', async () => {
    const hook = path.join(env.home.root, 'crash-hook');
    await fs.mkdir(hook, { recursive: true });
    await fs.writeFile(path.join(hook, 'sitecustomize.py'), CRASH_HOOK);
    const w = onCpu({ PYTHONPATH: hook, TWINFLOW_TEST_CRASH_ONCE: path.join(env.home.root, 'crashed'), TWINFLOW_TEST_CRASH_AT_STEP: '5' });
    const err = await failure(generate('b', w));
    expect(err.nonRetryable).toBeFalsy();
    expect(err.message).toMatch(/gpu\/dreambooth.py exited with code 1;[^]*crashing in optimizer step 5/);
    const before = (await progress('b')).length;
    const mugDone = await fs.readFile(path.join(await outputOf('b'), 'mug-red', 'done.json'), 'utf8');
    const out = (await generate('b', w, 2)).outputs as unknown as Out;
    const retried = (await progress('b')).slice(before);
    expect(new Set(retried.map((e) => e.instance))).toEqual(new Set(['vase-blue']));
    expect(retried.filter((e) => e.event === 'step').map((e) => e.step)).toEqual([1, 2, 3]);
    expect(out.counts).toMatchObject({ instances: 2, generated: 4, resumed: 1 });
    expect(await fs.readFile(path.join(await outputOf('b'), 'mug-red', 'done.json'), 'utf8')).toBe(mugDone);
  }, 300_000);
});
