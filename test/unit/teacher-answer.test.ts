/*
 * teacher/answer against a scripted OpenAI-compatible test server (not a model): Twin pairs
 * from a sharegpt export go to the teacher with the instruction, the answers whose tagged
 * yes/no equals the label become the assistant turns of a sharegpt dataset with its images
 * and dataset_info.json; a pair that got no answer fails the stage, and the retry asks only it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { readTree } from '../../activities/store/tree.js';
import { TEACHER_INSTRUCTION } from '../../engine/kinds/train.js';
import type { ArtifactRef } from '../../engine/types.js';
import { failure } from '../support/activity-results.js';
import { activitiesInTempHome, runStage } from '../support/activity-env.js';
import { startScriptedChatServer, type SeenRequest } from '../support/scripted-chat-server.js';

const env = activitiesInTempHome('teacher');
let dataset: string;
const labels = ['yes', 'no', 'yes', 'no', 'yes', 'no'];
let failQ4 = true;
const textOf = (req: SeenRequest) => req.body.messages[0]!.content.find((c) => c.type === 'text')!.text!;
const server = await startScriptedChatServer((req) => {
  const q = /Question (\d)/.exec(textOf(req))![1]!;
  const label = labels[Number(q)]!;
  if (q === '1') return { content: `They differ. <answer>${label === 'yes' ? 'no' : 'yes'}</answer>` };
  if (q === '2') return { content: 'I cannot tell.' };
  if (q === '4' && failQ4) return { status: 400, raw: '{"error":"bad request"}' };
  return { content: `  Both show the same logo and scratch. <answer>${label}</answer>\n` };
});
afterAll(() => server.close());

beforeAll(async () => {
  dataset = path.join(env.home.root, 'twin');
  await fs.mkdir(path.join(dataset, 'images'), { recursive: true });
  const rows = [];
  for (let i = 0; i < labels.length; i++) {
    const imgs = [`images/${i}a.png`, `images/${i}b.png`];
    for (const [j, img] of imgs.entries()) {
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 30 * i, g: 100 * j, b: 7 } } }).png().toFile(path.join(dataset, img));
    }
    rows.push({ messages: [{ role: 'user', content: `<image><image>Question ${i}: same object?` }, { role: 'assistant', content: `<answer>${labels[i]}</answer>` }], images: imgs });
  }
  await fs.writeFile(path.join(dataset, 'train.sharegpt.json'), JSON.stringify(rows));
});

type Out = { dataset: ArtifactRef; datasetDir: string; counts: Record<string, number> };
const teach = (w: Record<string, unknown> = {}) =>
  runStage(env.acts['teacher/answer'], 'teacher/answer', { dataset, endpoint: server.url, model: 'teacher-vlm', retries: 0, ...w }, 'teach');

describe('teacher/answer', () => {
  it('keeps only correct tagged answers as the assistant turns, with the images and dataset_info.json; a failed pair is asked again alone', async () => {
    const err = await failure(teach());
    expect(err.type).toBe('StageIncomplete');
    expect(err.message).toMatch(/1 of 6 pairs got no answer \(pair-4: .*400.*\); the 5 answers are kept .* retry the stage to ask only the rest/);
    const asked = server.seen.length;
    // Requests run concurrently: find the first pair's among them.
    const first = server.seen.find((r) => textOf(r).startsWith('Question 0'))!;
    expect(textOf(first)).toBe(`Question 0: same object?\n\n${TEACHER_INSTRUCTION}`);
    expect(first.body.messages[0]!.content.filter((c) => c.type === 'image_url')).toHaveLength(2);

    failQ4 = false;
    const out = (await teach()).outputs as unknown as Out;
    expect(server.seen.length - asked).toBe(1);
    expect(out.counts).toEqual({ pairs: 6, asked: 1, resumed: 5, kept: 4, wrong: 1, untagged: 1, requests: 1 });
    const rows = JSON.parse(await fs.readFile(path.join(out.datasetDir, 'teacher.sharegpt.json'), 'utf8')) as Array<{ messages: Array<{ content: string }>; images: string[] }>;
    expect(rows.map((r) => r.messages[0]!.content)).toEqual(['<image><image>Question 0: same object?', '<image><image>Question 3: same object?', '<image><image>Question 4: same object?', '<image><image>Question 5: same object?']);
    expect(rows[1]!.messages[1]!.content).toBe('Both show the same logo and scratch. <answer>no</answer>');
    const info = JSON.parse(await fs.readFile(path.join(out.datasetDir, 'dataset_info.json'), 'utf8')) as Record<string, { file_name: string }>;
    expect(info.twin_teacher!.file_name).toBe('teacher.sharegpt.json');
    const tree = await readTree(new ArtifactStore(env.home.artifactsDir), out.dataset);
    expect(tree.files.map((f) => f.path)).toEqual(['dataset_info.json', 'images/0a.png', 'images/0b.png', 'images/3a.png', 'images/3b.png', 'images/4a.png', 'images/4b.png', 'images/5a.png', 'images/5b.png', 'teacher.sharegpt.json']);
  });

  it('refuses a dataset without the sharegpt export', async () => {
    const err = await failure(teach({ file: 'missing.json' }));
    expect(err).toMatchObject({ type: 'InvalidStageInput', nonRetryable: true });
    expect(err.message).toMatch(/with.file: missing.json is not in the dataset .*; build it with twin\/assemble `exports: \[sharegpt\]`/);
  });
});
