import fs from 'node:fs/promises';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities/index.js';
import { homeLayout } from '../activities/home.js';
import type { StageActivityInput, StageActivityResult } from '../activities/stage-io.js';
import type { JsonObject } from '../engine/types.js';

/**
 * eval (a): fgvqa/predict against a local endpoint that answers every request after a
 * fixed 200 ms, 2,000 queries at concurrency 32; achieved throughput against the ideal
 * 32 / 0.2 s = 160 queries/s (target >= 0.9). (b): fgvqa/score on 12,000 predictions
 * (six sources x 1,000 pair + 1,000 multi), with 1,000 bootstrap resamples per number.
 */

const LATENCY_MS = 200;
const QUERIES = 2000;
const CONCURRENCY = 32;

/**
 * The fixed-latency endpoint the client is measured against (not a model). It runs in its
 * own process, as a real endpoint would, so serving never competes with the client's loop.
 */
const SERVER_SOURCE = `
const http = require('node:http');
const body = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'Looks alike. <answer>yes</answer>' } }] });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => setTimeout(() => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(body); }, ${LATENCY_MS}));
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function fixedLatencyServer(): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', SERVER_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the latency server exited (${code})`)));
  });
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill(); }),
  };
}

function run(activity: (i: StageActivityInput) => Promise<StageActivityResult>, uses: string, w: Record<string, unknown>): Promise<StageActivityResult> {
  const input: StageActivityInput = { runId: 'bench', stageId: uses.replace('/', '-'), uses, kindVersion: '1', with: w as JsonObject, shellEnv: {} };
  return new MockActivityEnvironment({ attempt: 1 }).run(activity, input) as Promise<StageActivityResult>;
}

export async function evalBench(): Promise<string[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-eval-'));
  const acts = createActivities({ home: homeLayout(root) });
  const server = await fixedLatencyServer();
  try {
    const images = await Promise.all([0, 1].map(async (k) => {
      const file = path.join(root, `${k}.jpg`);
      await sharp({ create: { width: 224, height: 224, channels: 3, background: { r: 90 * k, g: 120, b: 60 } } }).jpeg().toFile(file);
      return file;
    }));
    const queries = path.join(root, 'queries.jsonl');
    await fs.writeFile(queries, Array.from({ length: QUERIES }, (_, i) => JSON.stringify({ id: `q${i}`, source: 'bench', type: 'pair', images, question: 'same?', answer: 'yes' })).join('\n') + '\n');
    const t0 = performance.now();
    const result = await run(acts['fgvqa/predict'], 'fgvqa/predict', { queries, endpoint: server.url, model: 'fixed-latency', concurrency: CONCURRENCY, apiKeyEnv: 'NO_KEY' });
    const seconds = (performance.now() - t0) / 1000;
    const achieved = QUERIES / seconds;
    const ideal = CONCURRENCY / (LATENCY_MS / 1000);
    const answered = (result.outputs as { counts: { answered: number } }).counts.answered;

    const sources = ['twin-eval', 'ilias', 'landmarks', 'met', 'cub', 'inquire'];
    const rows = sources.flatMap((source) => Array.from({ length: 2000 }, (_, i) => ({ id: `${source}-${i}`, source, type: i < 1000 ? 'pair' : 'multi', answer: i < 1000 ? (i % 2 ? 'no' : 'yes') : String(i % 4) })));
    const qFile = path.join(root, 'q12k.jsonl');
    const pFile = path.join(root, 'p12k.jsonl');
    await fs.writeFile(qFile, rows.map((r) => JSON.stringify({ ...r, images: [], question: 'q' })).join('\n') + '\n');
    await fs.writeFile(pFile, rows.map((r, i) => JSON.stringify({ id: r.id, output: `Reasoning about ${i} details. <answer>${i % 3 ? r.answer : 'no'}</answer>` })).join('\n') + '\n');
    const t1 = performance.now();
    await run(acts['fgvqa/score'], 'fgvqa/score', { queries: qFile, predictions: pFile });
    const scoreMs = performance.now() - t1;
    return [
      `(a) predict: ${QUERIES} queries at concurrency ${CONCURRENCY} against a ${LATENCY_MS} ms endpoint: ${seconds.toFixed(2)} s, ${achieved.toFixed(1)} queries/s ` +
        `vs ideal ${ideal.toFixed(0)} -> ${(achieved / ideal).toFixed(3)} of ideal (target >= 0.9); ${answered} answered`,
      `(b) score: 12,000 predictions (6 sources, default and strict, 1,000 bootstrap resamples per number): ${(scoreMs / 1000).toFixed(2)} s`,
    ];
  } finally {
    await server.close();
    await fs.rm(root, { recursive: true, force: true });
  }
}
