/**
 * A tiny, real input for twin/assemble: images drawn with sharp and stored through the
 * ArtifactStore (as images/prepare leaves them: content-addressed, no extension), an
 * instance manifest, hard-negative review items with decisions, and generated images with
 * decisions. Shared by the vitest tests and make_twin_fixture.ts (the pytest fixture).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { JsonlWriter } from '../../activities/data/jsonl.js';
import { MANIFEST_MEDIA_TYPE, type ManifestImage, type ManifestRow } from '../../activities/data/manifest.js';
import type { HomeLayout } from '../../activities/home.js';
import type { Decision, ReviewItem } from '../../activities/review/items.js';
import type { StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { createAssembleTwin } from '../../activities/twin/assemble.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';

export interface FixtureSpec {
  /** Real images per instance, one entry per instance. */
  real: number[];
  /** Generated images per instance (same length as real, or shorter: 0 for the rest). */
  generated?: number[];
  /** Generated images whose decision is reject (by position in the order drawn). */
  rejectGenerated?: number[];
  /** Hard-negative items as instance positions; `accept: false` is rejected, `undecided` has no decision. */
  hard?: Array<{ a: number; b: number; accept?: boolean; undecided?: boolean }>;
  categories?: string[];
}

export interface Fixture {
  with: JsonObject;
  ids: string[];
  /** Digest of every real image, by instance position. */
  realSha: string[][];
  /** Digest of every generated image in the order drawn, with whether it was accepted. */
  generatedSha: Array<{ sha256: string; instance: number; accepted: boolean }>;
  /** Item ids of rejected and undecided hard-negative pairs. */
  rejectedHard: Array<[string, string]>;
}

/** A small picture whose pixels encode `n` exactly, so every picture has distinct bytes. */
async function picture(store: ArtifactStore, dir: string, n: number, format: 'png' | 'jpeg'): Promise<ManifestImage> {
  const size = 32;
  const px = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const block = (x >> 3) + 4 * (y >> 3);
      px[i] = (n * 53 + block * 17) & 255;
      px[i + 1] = (n >> 8) * 40 + block * 9;
      px[i + 2] = block % 2 ? 230 : 20;
    }
  }
  const file = path.join(dir, `src-${n}.${format}`);
  const image = sharp(px, { raw: { width: size, height: size, channels: 3 } });
  await (format === 'png' ? image.png() : image.jpeg({ quality: 100 })).toFile(file);
  const ref = await store.putFile(file);
  return { path: (await store.file(ref.sha256)), role: format === 'png' ? 'listing' : 'generated', sha256: ref.sha256, width: size, height: size };
}

async function writeJsonl(store: ArtifactStore, file: string, rows: unknown[], mediaType?: string): Promise<ArtifactRef> {
  const out = await JsonlWriter.open(file);
  for (const row of rows) await out.write(row);
  await out.close();
  return store.putFile(file, mediaType);
}

const decision = (id: string, choice: string): Decision => ({ id, choice, by: 'test', at: '2025-01-01T00:00:00Z', automatic: false });

export async function buildTwinFixture(home: HomeLayout, spec: FixtureSpec): Promise<Fixture> {
  const store = new ArtifactStore(home.artifactsDir);
  const dir = path.join(home.root, 'fixture');
  await fs.mkdir(dir, { recursive: true });
  const categories = spec.categories ?? ['sneaker', 'mug', 'backpack'];
  const ids = spec.real.map((_, i) => `inst-${String(i).padStart(3, '0')}`);
  let n = 0;
  const rows: ManifestRow[] = [];
  const realSha: string[][] = [];
  for (const [i, count] of spec.real.entries()) {
    const images: ManifestImage[] = [];
    for (let k = 0; k < count; k++) images.push({ ...(await picture(store, dir, n++, 'png')), role: k % 2 ? 'review' : 'listing' });
    realSha.push(images.map((x) => x.sha256!));
    rows.push({ instance_id: ids[i]!, asins: [ids[i]!], title: `title ${i}`, category: categories[i % categories.length]!, images });
  }
  const w: JsonObject = { instances: { ...(await writeJsonl(store, path.join(dir, 'instances.jsonl'), rows, MANIFEST_MEDIA_TYPE)) } };
  const generatedSha: Fixture['generatedSha'] = [];
  if (spec.generated) {
    const genRows: ManifestRow[] = [];
    for (const [i, count] of spec.generated.entries()) {
      const images: ManifestImage[] = [];
      for (let k = 0; k < count; k++) images.push(await picture(store, dir, n++, 'jpeg'));
      for (const x of images) generatedSha.push({ sha256: x.sha256!, instance: i, accepted: !spec.rejectGenerated?.includes(generatedSha.length) });
      genRows.push({ ...rows[i]!, images });
    }
    w.generated = { ...(await writeJsonl(store, path.join(dir, 'generated.jsonl'), genRows, MANIFEST_MEDIA_TYPE)) };
    const decisions = generatedSha.map((g) => decision(`gen:${g.sha256}`, g.accepted ? 'accept' : 'reject'));
    w.generatedDecisions = { ...(await writeJsonl(store, path.join(dir, 'generated-decisions.jsonl'), decisions)) };
  }
  const rejectedHard: Array<[string, string]> = [];
  if (spec.hard) {
    const items: ReviewItem[] = spec.hard.map(({ a, b }) => ({
      id: `hn:${ids[a]}|${ids[b]}`, group: ids[a], score: 0.9, images: [], metadata: { anchor: ids[a], candidate: ids[b] },
    }));
    const decisions = spec.hard.flatMap((h, k) => {
      if (h.accept === false || h.undecided) rejectedHard.push([ids[h.a]!, ids[h.b]!]);
      return h.undecided ? [] : [decision(items[k]!.id, h.accept === false ? 'reject' : 'accept')];
    });
    w.hardNegatives = { ...(await writeJsonl(store, path.join(dir, 'hard-items.jsonl'), items)) };
    w.hardDecisions = { ...(await writeJsonl(store, path.join(dir, 'hard-decisions.jsonl'), decisions)) };
  }
  return { with: w, ids, realSha, generatedSha, rejectedHard };
}

export interface AssembleOutputs {
  dataset: string;
  files: Record<string, ArtifactRef>;
  counts: Record<'train' | 'eval', Record<'positive' | 'hard-negative' | 'generated-negative' | 'total', number>>;
}

/** Runs the twin/assemble activity as a worker would, with a mock activity context. */
export async function runAssemble(home: HomeLayout, w: JsonObject, env = new MockActivityEnvironment({ attempt: 1 }), stageId = 'assemble'): Promise<AssembleOutputs> {
  const store = new ArtifactStore(home.artifactsDir);
  const input: StageActivityInput = { runId: 'r1', stageId, uses: 'twin/assemble', kindVersion: '1', with: w, shellEnv: {} };
  const result = (await env.run(createAssembleTwin({ store, home }), input)) as StageActivityResult;
  return result.outputs as unknown as AssembleOutputs;
}
