/**
 * Benchmark twin (b): assembling and writing a Twin-scale set (1,836 instances over 36
 * categories, ~16.9K real and ~5.3K generated images, ~123K positive and ~438K negative
 * queries) with twinflow's twin/assemble against a pyarrow script that writes the same
 * rows (bench/python/assemble_baseline.py). Both run in child processes on the same
 * inputs; each reports its own wall time (from reading the inputs to the last file) and
 * peak RSS. The rows files are compared as multisets of lines.
 *
 *   npm run bench -- twin:assemble        (BENCH_REPS=n for more alternating repetitions)
 *   tsx bench/twin-assemble.ts --child CONFIG.json   (one twinflow run; what the bench spawns)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ArtifactStore } from '../activities/artifact-store.js';
import { JsonlWriter } from '../activities/data/jsonl.js';
import type { ManifestRow } from '../activities/data/manifest.js';
import { homeLayout, type HomeLayout } from '../activities/home.js';
import type { Decision, ReviewItem } from '../activities/review/items.js';
import type { StageActivityResult } from '../activities/stage-io.js';
import { createAssembleTwin } from '../activities/twin/assemble.js';
import { seededRandom } from '../activities/twin/pairs.js';
import { DEFAULT_PAIR_TEMPLATES } from '../activities/twin/prompts.js';
import type { ArtifactRef, JsonObject } from '../engine/types.js';

const INSTANCES = 1_836;
const CATEGORIES = 36;
const REAL = 16_869;
const GENERATED = 5_288;
const POSITIVES = 123_000;
const NEGATIVES = 438_000;
const REPS = Number(process.env.BENCH_REPS ?? 1);

interface ChildReport { seconds: number; maxRssMB: number; rows?: unknown }

/** Real images per instance: a seeded log-normal whose spread is tuned to give ~123K positive pairs. */
function realCounts(): number[] {
  const random = seededRandom(7);
  const z = Array.from({ length: INSTANCES }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
  const draw = (mu: number, sigma: number) => z.map((v) => Math.max(2, Math.round(Math.exp(mu + sigma * v))));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  let best = draw(2, 0.5);
  for (let sigma = 0.3; sigma <= 1.2; sigma += 0.01) {
    let lo = 0;
    let hi = 4;
    for (let k = 0; k < 40; k++) {
      const mid = (lo + hi) / 2;
      if (sum(draw(mid, sigma)) < REAL) lo = mid;
      else hi = mid;
    }
    const counts = draw(lo, sigma);
    const positives = (xs: number[]) => sum(xs.map((n) => (n * (n - 1)) / 2));
    if (Math.abs(positives(counts) - POSITIVES) < Math.abs(positives(best) - POSITIVES)) best = counts;
  }
  return best;
}

/** A few bytes that sniff as JPEG and differ per image: the bench measures assembly, not decoding. */
const placeholder = (n: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`twin-bench-${n}`), Buffer.from([0xff, 0xd9])]);

async function jsonlArtifact(store: ArtifactStore, file: string, rows: unknown[]): Promise<ArtifactRef> {
  const out = await JsonlWriter.open(file);
  for (const row of rows) await out.write(row);
  await out.close();
  return store.putFile(file);
}

const decision = (id: string, accept: boolean): Decision => ({ id, choice: accept ? 'accept' : 'reject', by: 'bench', at: '2025-01-01T00:00:00Z', automatic: true });

/** Instances with their real images, and their generated images with decisions (a tenth get one rejected extra). */
async function instanceRows(store: ArtifactStore, ids: string[], real: number[]) {
  let n = 0;
  const image = async (role: 'listing' | 'review' | 'generated') => {
    const ref = await store.putBytes(placeholder(n++));
    return { path: (await store.file(ref.sha256)), role, sha256: ref.sha256 };
  };
  const rows: ManifestRow[] = [];
  const generated: ManifestRow[] = [];
  const decisions: Decision[] = [];
  let negatives = 0;
  for (let i = 0; i < INSTANCES; i++) {
    const images = [];
    for (let k = 0; k < real[i]!; k++) images.push(await image(k === 0 ? 'listing' : 'review'));
    const row = { instance_id: ids[i]!, asins: [ids[i]!], title: `bench ${i}`, category: `cat-${String(i % CATEGORIES).padStart(2, '0')}`, images };
    rows.push(row);
    const accepted = Math.floor(GENERATED / INSTANCES) + (i < GENERATED % INSTANCES ? 1 : 0);
    const gen = [];
    for (let k = 0; k < accepted + (i % 10 === 0 ? 1 : 0); k++) gen.push(await image('generated'));
    gen.forEach((g, k) => decisions.push(decision(`gen:${g.sha256}`, k < accepted)));
    negatives += real[i]! * accepted;
    generated.push({ ...row, images: gen });
  }
  return { rows, generated, decisions, negatives, files: n };
}

/** Same-category hard-negative items, a fifth of them rejected, until accepted ones give `wanted` queries. */
function hardItems(ids: string[], real: number[], wanted: number) {
  const random = seededRandom(11);
  const items: ReviewItem[] = [];
  const decisions: Decision[] = [];
  const seen = new Set<string>();
  let queries = 0;
  while (queries < wanted) {
    const a = Math.floor(random() * INSTANCES);
    const b = (a + CATEGORIES * (1 + Math.floor(random() * (INSTANCES / CATEGORIES - 1)))) % INSTANCES;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const accept = random() < 0.8;
    const id = `hn:${ids[a]}|${ids[b]}`;
    items.push({ id, group: ids[a], score: 0.8, images: [], metadata: { anchor: ids[a], candidate: ids[b] } });
    decisions.push(decision(id, accept));
    if (accept) queries += real[a]! * real[b]!;
  }
  return { items, decisions, queries };
}

/** Writes the synthetic Twin-scale inputs into a store and returns the stage's `with`. */
export async function syntheticInputs(home: HomeLayout): Promise<{ with: JsonObject; summary: string }> {
  const store = new ArtifactStore(home.artifactsDir);
  const real = realCounts();
  const ids = real.map((_, i) => `B${String(i).padStart(5, '0')}`);
  const inst = await instanceRows(store, ids, real);
  const hard = hardItems(ids, real, NEGATIVES - inst.negatives);
  const dir = path.join(home.root, 'inputs');
  const put = async (name: string, rows: unknown[]) => ({ ...(await jsonlArtifact(store, path.join(dir, `${name}.jsonl`), rows)) });
  const w: JsonObject = {
    instances: await put('instances', inst.rows),
    generated: await put('generated', inst.generated),
    generatedDecisions: await put('generated-decisions', inst.decisions),
    hardNegatives: await put('hard', hard.items),
    hardDecisions: await put('hard-decisions', hard.decisions),
  };
  const positives = real.reduce((s, k) => s + (k * (k - 1)) / 2, 0);
  const summary = `${INSTANCES} instances, ${CATEGORIES} categories, ${inst.files} image files (${real.reduce((a, b) => a + b, 0)} real, ` +
    `${GENERATED} accepted generated), ${positives} positive + ${hard.queries + inst.negatives} negative queries before the split`;
  return { with: w, summary };
}

/** One twinflow run, in this (child) process: what `--child` does. */
async function childRun(configFile: string): Promise<void> {
  const config = JSON.parse(await fs.readFile(configFile, 'utf8')) as { home: string; with: JsonObject };
  const home = homeLayout(config.home);
  const activity = createAssembleTwin({ store: new ArtifactStore(home.artifactsDir), home });
  const start = performance.now();
  const result = (await new MockActivityEnvironment({ attempt: 1 }).run(activity, {
    runId: 'bench', stageId: 'assemble', uses: 'twin/assemble', kindVersion: '1', with: config.with, shellEnv: {},
  })) as StageActivityResult;
  const seconds = (performance.now() - start) / 1000;
  const report: ChildReport = { seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, rows: result.outputs.counts };
  console.log(JSON.stringify(report));
}

/** An order-independent digest of a file's lines (sum of per-line hashes). */
async function linesDigest(file: string): Promise<string> {
  let sum = 0n;
  let lines = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    sum = (sum + BigInt(`0x${createHash('sha1').update(line).digest('hex').slice(0, 15)}`)) & ((1n << 64n) - 1n);
    lines++;
  }
  return `${lines}:${sum.toString(16)}`;
}

const lastJson = (text: string) => JSON.parse(text.trim().split('\n').at(-1)!) as ChildReport;

export async function assembleBench(): Promise<string[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-assemble-'));
  try {
    const home = homeLayout(root);
    const inputs = await syntheticInputs(home);
    const store = new ArtifactStore(home.artifactsDir);
    const twinOut = path.join(root, 'out-twinflow');
    const pyOut = path.join(root, 'out-pyarrow');
    const childConfig = path.join(root, 'child.json');
    await fs.writeFile(childConfig, JSON.stringify({ home: root, with: { ...inputs.with, out: twinOut } }));
    const ref = (name: string) => store.file(inputs.with[name] as unknown as ArtifactRef);
    const pyConfig = path.join(root, 'baseline.json');
    await fs.writeFile(pyConfig, JSON.stringify({
      instances: await ref('instances'), generated: await ref('generated'), generatedDecisions: await ref('generatedDecisions'),
      hardNegatives: await ref('hardNegatives'), hardDecisions: await ref('hardDecisions'), evalFraction: 0.1, seed: 0, templates: DEFAULT_PAIR_TEMPLATES,
    }));
    const tsx = path.resolve('node_modules/.bin/tsx');
    const python = path.resolve('.venv/bin/python');
    const runs = { twinflow: [] as ChildReport[], pyarrow: [] as ChildReport[] };
    for (let rep = 0; rep < REPS; rep++) {
      runs.twinflow.push(lastJson(execFileSync(tsx, [import.meta.filename, '--child', childConfig], { encoding: 'utf8', maxBuffer: 1 << 26 })));
      await fs.rm(pyOut, { recursive: true, force: true });
      runs.pyarrow.push(lastJson(execFileSync(python, ['bench/python/assemble_baseline.py', pyConfig, pyOut], { encoding: 'utf8', maxBuffer: 1 << 26 })));
    }
    const same = [];
    for (const split of ['train', 'eval']) {
      same.push((await linesDigest(path.join(twinOut, `${split}.jsonl`))) === (await linesDigest(path.join(pyOut, `${split}.jsonl`))));
    }
    const best = (xs: ChildReport[]) => xs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const tw = best(runs.twinflow);
    const py = best(runs.pyarrow);
    const ratio = tw.seconds / py.seconds;
    return [
      `input: ${inputs.summary}`,
      `rows written (twinflow): ${JSON.stringify(tw.rows)}; pyarrow: ${JSON.stringify(py.rows)}`,
      `rows files equal as multisets of lines (train, eval): ${same.join(', ')}`,
      `twinflow: ${tw.seconds.toFixed(2)} s, peak RSS ${tw.maxRssMB.toFixed(0)} MB (target <= 512 MB: ${tw.maxRssMB <= 512 ? 'met' : 'MISSED'})`,
      `pyarrow:  ${py.seconds.toFixed(2)} s, peak RSS ${py.maxRssMB.toFixed(0)} MB`,
      `ratio twinflow / pyarrow: ${ratio.toFixed(2)}x (target <= 1.0x: ${ratio <= 1 ? 'met' : 'MISSED'}); best of ${REPS}`,
    ];
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--child' && process.argv[3]) await childRun(process.argv[3]);
  else console.log((await assembleBench()).join('\n'));
}
