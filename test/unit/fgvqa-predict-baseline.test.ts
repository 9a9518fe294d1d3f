/*
 * fgvqa/predict with backend embedding-baseline: the bundled ONNX encoder on real JPEGs (sharp):
 * - a threshold calibrated on held-out labelled pairs answers an easy set right, pairs and multi
 * - a given threshold is the one used
 * - it refuses to calibrate on the queries it answers, and needs a threshold or a calibration set
 * - a query whose image cannot be read fails the stage; a retry embeds only that one
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure, jsonlRows } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';

const MODEL = path.resolve(import.meta.dirname, '../../models/mobilenet_v2_mid.onnx');
const env = activitiesInTempHome('baseline');
const COLORS: Array<[number, number, number]> = [[200, 30, 30], [20, 160, 40], [30, 60, 210], [230, 200, 20], [150, 40, 170], [20, 190, 200], [250, 130, 0], [90, 90, 90], [250, 250, 250], [120, 60, 20], [0, 0, 0], [255, 150, 200]];

/** Instance k: a coloured background with a shape; `moved` is the same instance photographed again (shifted, lower quality). */
async function photo(dir: string, k: number, moved: boolean): Promise<string> {
  const [r, g, b] = COLORS[k]!;
  const dx = moved ? 4 : 0;
  const fg = `rgb(${255 - r},${255 - g},${255 - b})`;
  const shape = [
    `<circle cx="${48 + dx}" cy="48" r="28" fill="${fg}"/>`,
    `<rect x="${22 + dx}" y="30" width="52" height="36" fill="${fg}"/>`,
    `<polygon points="${48 + dx},14 ${82 + dx},80 ${14 + dx},80" fill="${fg}"/>`,
  ][k % 3];
  const file = path.join(dir, `${k}${moved ? 'b' : 'a'}.jpg`);
  await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="rgb(${r},${g},${b})"/>${shape}</svg>`))
    .jpeg({ quality: moved ? 60 : 90 }).toFile(file);
  return file;
}

type Query = { id: string; source: string; type: 'pair' | 'multi'; images: string[]; question: string; answer: string };
let img: (k: number, moved?: boolean) => string;
let calibration: string;
let queries: string;
let expected: Query[];

/** Pairs of instances `ks`: each with its other photo (yes) and with another instance of the group (no). */
const pairsOf = (ks: number[]): Query[] => ks.flatMap((k, i) => [
  { id: `same-${k}`, source: 'twin-eval', type: 'pair' as const, images: [img(k), img(k, true)], question: 'Same object?', answer: 'yes' },
  { id: `diff-${k}`, source: 'twin-eval', type: 'pair' as const, images: [img(k), img(ks[(i + 3) % ks.length]!)], question: 'Same object?', answer: 'no' },
]);
const write = async (name: string, rows: Query[]) => {
  const file = path.join(env.home.root, name);
  await fs.writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
};

beforeAll(async () => {
  const dir = path.join(env.home.root, 'images');
  await fs.mkdir(dir, { recursive: true });
  const files = new Map<string, string>();
  for (let k = 0; k < COLORS.length; k++) for (const moved of [false, true]) files.set(`${k}${moved}`, await photo(dir, k, moved));
  img = (k, moved = false) => files.get(`${k}${moved}`)!;
  // Calibrate on instances 0-5; answer about instances 6-11.
  calibration = await write('calibration.jsonl', pairsOf([0, 1, 2, 3, 4, 5]));
  expected = [
    ...pairsOf([6, 7, 8, 9, 10, 11]),
    { id: 'multi-1', source: 'twin-eval', type: 'multi', images: [img(6), img(6, true), img(9), img(11)], question: 'How many match?', answer: '1' },
    { id: 'multi-0', source: 'twin-eval', type: 'multi', images: [img(7), img(8), img(10), img(6, true)], question: 'How many match?', answer: '0' },
  ];
  queries = await write('queries.jsonl', expected);
});

const predict = (stageId: string, baseline: Record<string, unknown>, w: Record<string, unknown> = {}) =>
  runStage(env.acts['fgvqa/predict'], 'fgvqa/predict', { queries, backend: 'embedding-baseline', baseline: { model: MODEL, ...baseline }, ...w }, stageId);
type Out = { predictions: ArtifactRef; counts: Record<string, number>; baseline: { threshold: number; calibration?: { pairs: number; accuracy: number } } };
const rowsOf = (out: Out) => jsonlRows<{ id: string; output: string }>(new ArtifactStore(env.home.artifactsDir), out.predictions);
const answerOf = (output: string) => /<answer>(.*)<\/answer>$/.exec(output)?.[1];

it('answers an easy set right with a threshold calibrated on held-out labelled pairs', async () => {
  const out = (await predict('a', { calibrate: calibration })).outputs as unknown as Out;
  expect(out.baseline.calibration).toEqual({ pairs: 12, accuracy: 1 });
  expect(out.baseline.threshold).toBeGreaterThan(0.6);
  expect(out.baseline.threshold).toBeLessThan(0.95);
  const rows = await rowsOf(out);
  expect(rows.map((r) => r.id)).toEqual(expected.map((q) => q.id));
  expect(rows.map((r) => answerOf(r.output))).toEqual(expected.map((q) => q.answer));
  expect(rows[0]!.output).toMatch(new RegExp(`^Embedding cosine 0\\.\\d{3} against threshold ${out.baseline.threshold}\\. <answer>yes</answer>$`));
  expect(rows.at(-1)!.output).toMatch(/^Embedding cosines (0\.\d{3}, ){2}0\.\d{3} against threshold .* <answer>0<\/answer>$/);
  expect(out.counts).toEqual({ queries: 14, answered: 14, resumed: 0 });
});

it('uses the threshold it is given', async () => {
  const strict = (await predict('b', { threshold: 0.995 })).outputs as unknown as Out;
  expect(strict.baseline).toEqual({ threshold: 0.995 });
  const rows = await rowsOf(strict);
  expect(rows.every((r) => r.output.includes('against threshold 0.995.'))).toBe(true);
  expect(rows.map((r) => answerOf(r.output))).toEqual(expected.map((q) => (q.type === 'pair' ? 'no' : '0')));
  const lax = await rowsOf((await predict('c', { threshold: -1 })).outputs as unknown as Out);
  expect(lax.map((r) => answerOf(r.output))).toEqual(expected.map((q) => (q.type === 'pair' ? 'yes' : '3')));
});

it('refuses to calibrate on the queries it answers, and needs a threshold or a calibration set', async () => {
  const copy = path.join(env.home.root, 'same-queries.jsonl');
  await fs.copyFile(queries, copy);
  const leak = await failure(predict('d', { calibrate: copy }));
  expect(leak.type).toBe('InvalidStageInput');
  expect(leak.message).toMatch(/with\.baseline\.calibrate holds the very queries being predicted; calibrating on them would use their labels/);
  const neither = await failure(predict('e', {}));
  expect(neither.type).toBe('InvalidStageInput');
  expect(neither.message).toMatch(/backend embedding-baseline needs baseline\.threshold or baseline\.calibrate .* never calibrates on the queries it answers/);
  const noPairs = await write('multi-only.jsonl', expected.filter((q) => q.type === 'multi'));
  expect((await failure(predict('f', { calibrate: noPairs }))).message).toMatch(/holds no labelled pair queries/);
});

it('fails on an image it cannot read, keeping the other answers, and a retry embeds only that query', async () => {
  const missing = path.join(env.home.root, 'images', 'late.jpg');
  const rows = [...expected.slice(0, 3), { ...expected[3]!, images: [img(7), missing] }];
  const file = await write('late.jsonl', rows);
  const err = await failure(predict('g', { threshold: 0.9 }, { queries: file }));
  expect(err.type).toBe('StageIncomplete');
  expect(err.message).toMatch(/1 of 4 queries got no answer \(diff-7: cannot embed its images: .*\); the 3 answers are kept/);
  await fs.copyFile(img(10), missing);
  const out = (await predict('g', { threshold: 0.9 }, { queries: file })).outputs as unknown as Out;
  expect(out.counts).toEqual({ queries: 4, answered: 4, resumed: 3 });
  expect((await rowsOf(out)).map((r) => answerOf(r.output))).toEqual(['yes', 'no', 'yes', 'no']);
});
