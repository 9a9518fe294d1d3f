/*
 * The embedding baseline: threshold calibration, answers from cosines, the real encoder on
 * real JPEGs, and its OpenAI-compatible server's answers and refusals.
 */
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { answerFromEmbeddings, calibrateThreshold, ImageEncoder } from '../../activities/fgvqa/baseline.js';
import { startBaselineServer } from '../../activities/fgvqa/baseline-server.js';
import { dot } from '../../activities/embed/matrix.js';

const MODEL = path.resolve(import.meta.dirname, '../../models/mobilenet_v2_mid.onnx');
let encoder: ImageEncoder;
const jpeg = (r: number, g: number, b: number, circle = false) => sharp(Buffer.from(
  `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="rgb(${r},${g},${b})"/>${circle ? '<circle cx="48" cy="48" r="30" fill="white"/>' : ''}</svg>`,
)).jpeg().toBuffer();

beforeAll(async () => { encoder = await ImageEncoder.open(MODEL); });
afterAll(async () => encoder?.close());

it('calibrates the threshold that answers the most labelled pairs right', () => {
  expect(calibrateThreshold([{ cosine: 0.9, same: true }, { cosine: 0.8, same: true }, { cosine: 0.5, same: false }, { cosine: 0.6, same: false }]))
    .toEqual({ threshold: 0.7, accuracy: 1 });
  expect(calibrateThreshold([{ cosine: 0.9, same: true }, { cosine: 0.2, same: true }, { cosine: 0.5, same: false }])).toMatchObject({ accuracy: 2 / 3 });
});

it('answers pairs by the threshold and multi queries by counting candidates above it', () => {
  const v = (x: number) => new Float32Array([x, Math.sqrt(1 - x * x)]);
  const ref = new Float32Array([1, 0]);
  expect(answerFromEmbeddings([ref, v(0.9)], 0.8)).toMatch(/<answer>yes<\/answer>$/);
  expect(answerFromEmbeddings([ref, v(0.7)], 0.8)).toMatch(/<answer>no<\/answer>$/);
  expect(answerFromEmbeddings([ref, v(0.95), v(0.1), v(0.85)], 0.8)).toMatch(/<answer>2<\/answer>$/);
});

it('embeds real images: the same picture twice is closer than two different ones', async () => {
  const [a, a2, b] = await encoder.embed([await jpeg(200, 30, 30, true), await jpeg(200, 30, 30, true), await jpeg(20, 160, 40)]);
  expect(dot(a!, a2!)).toBeGreaterThan(0.999);
  expect(dot(a!, b!)).toBeLessThan(dot(a!, a2!));
});

it('serves answers in the chat-completions shape and refuses what it cannot read', async () => {
  const server = await startBaselineServer({ encoder, threshold: 0.9, port: 0 });
  try {
    const image = `data:image/jpeg;base64,${(await jpeg(10, 10, 200, true)).toString('base64')}`;
    const ask = (content: unknown) => fetch(`${server.url}/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content }] }) });
    const ok = await ask([{ type: 'text', text: 'same?' }, { type: 'image_url', image_url: { url: image } }, { type: 'image_url', image_url: { url: image } }]);
    const body = await ok.json() as { model: string; choices: Array<{ message: { content: string } }> };
    expect(body.model).toBe('embedding-baseline');
    expect(body.choices[0]!.message.content).toMatch(/<answer>yes<\/answer>$/);
    expect((await ask('just text')).status).toBe(400);
    expect((await ask([{ type: 'image_url', image_url: { url: 'http://example.org/a.jpg' } }, { type: 'image_url', image_url: { url: image } }])).status).toBe(400);
    expect((await ask([{ type: 'image_url', image_url: { url: image } }])).status).toBe(400);
    expect((await ask([{ type: 'image_url', image_url: { url: 'data:image/jpeg;base64,AAAA' } }, { type: 'image_url', image_url: { url: image } }])).status).toBe(400);
    expect(await (await fetch(`${server.url}/models`)).json()).toMatchObject({ data: [{ id: 'embedding-baseline' }] });
  } finally {
    await server.close();
  }
});
