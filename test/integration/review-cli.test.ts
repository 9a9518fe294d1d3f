/**
 * `twinflow review decide` and `twinflow review export` against a real dev server:
 * - status shows an open review with its progress and the command to open it
 * - a decisions file with bad lines is refused with line numbers and nothing is sent
 * - a good file is applied in batches; sending it again applies nothing twice
 * - export while open writes the decisions so far and the audit; after close, the stage's outputs
 * - `twinflow review RUN` serves the page at that run's open review; unknown runs and stages are refused
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { reviewProgress } from '../../review/queue-client.js';
import { startHarness, type Harness } from './harness.js';
import { putReviewItems, reviewPipeline } from '../support/review-items.js';
import { runTwinflow } from '../support/twinflow-cli.js';

let h: Harness;
let dir: string;
const twinflow = (...args: string[]) => runTwinflow({ address: h.address, home: h.home.root, cwd: dir }, ...args);
const lines = async (file: string) => (await fs.readFile(path.join(dir, file), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  h = await startHarness();
  process.env.TWINFLOW_HOME = h.home.root;
  dir = path.join(h.home.root, 'work');
  await fs.mkdir(dir, { recursive: true });
});
afterAll(async () => h?.stop());

it('decides a review from a file and exports it, open and closed', async () => {
  const { ref, ids } = await putReviewItems(new ArtifactStore(h.home.artifactsDir), 4);
  const runId = await h.submit(reviewPipeline(ref, { choices: ['yes', 'no', 'unsure'] }));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  await reviewProgress(h.session, runId, 'check');

  const status = await twinflow('status', runId);
  expect(status.stdout).toMatch(new RegExp(`waits for review .*0/4.*twinflow review ${runId} check`));
  expect(status.stdout).toMatch(new RegExp(`twinflow review decide ${runId} check --file`));

  await fs.writeFile(path.join(dir, 'bad.jsonl'), [
    JSON.stringify({ id: ids[0], choice: 'yes' }), JSON.stringify({ id: 'nope', choice: 'yes' }), JSON.stringify({ id: ids[1], choice: 'maybe' }), '{oops',
  ].join('\n'));
  const bad = await twinflow('review', 'decide', runId, 'check', '--file', 'bad.jsonl');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/line 2: unknown item nope/);
  expect(bad.stderr).toMatch(/line 3: "maybe" is not a choice; choices: yes, no, unsure/);
  expect(bad.stderr).toMatch(/line 4: /);
  expect(bad.stderr).toMatch(/nothing was sent/);
  expect((await reviewProgress(h.session, runId, 'check')).votes).toBe(0);

  await fs.writeFile(path.join(dir, 'good.jsonl'), [
    JSON.stringify({ id: ids[0], choice: 'yes', note: 'same logo' }), JSON.stringify({ id: ids[1], choice: 'no', by: 'zoe' }), JSON.stringify({ id: ids[2], choice: 'unsure' }),
  ].join('\n'));
  const good = await twinflow('review', 'decide', runId, 'check', '--file', 'good.jsonl', '--batch', '2');
  expect(good.stdout).toMatch(/3 applied, 0 already recorded, 0 undone, 0 skipped; 3\/4 items decided/);
  const again = await twinflow('review', 'decide', runId, 'check', '--file', 'good.jsonl');
  expect(again.stdout).toMatch(/0 applied, 3 already recorded/);

  const open = await twinflow('review', 'export', runId, 'check');
  expect(open.stdout).toMatch(/open, 3\/4 decided/);
  expect((await lines('check.decisions.jsonl')).map((d) => [d.id, d.choice, d.by])).toEqual([[ids[0], 'yes', 'tester'], [ids[1], 'no', 'zoe'], [ids[2], 'unsure', 'tester']]);
  expect((await lines('check.audit.jsonl')).map((a) => a.seq)).toEqual([1, 2, 3]);

  await fs.writeFile(path.join(dir, 'last.jsonl'), JSON.stringify({ id: ids[3], choice: 'no' }));
  await twinflow('review', 'decide', runId, 'check', '--file', 'last.jsonl');
  await h.result(runId);
  const closed = await twinflow('review', 'export', runId, 'check', '--decisions', 'final.jsonl');
  expect(closed.stdout).toMatch(/check \(closed\): 4 decisions -> final.jsonl/);
  expect((await lines('final.jsonl')).map((d) => d.choice)).toEqual(['yes', 'no', 'unsure', 'no']);
  const done = await twinflow('status', runId);
  expect(done.stdout).toMatch(/4 items decided \(4 by people\): yes 1, no 2, unsure 1/);
});

it('opens the page at a run\'s waiting review, and refuses unknown runs and stages', async () => {
  const { ref } = await putReviewItems(new ArtifactStore(h.home.artifactsDir), 2);
  const runId = await h.submit(reviewPipeline(ref));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  expect(await twinflow('review', 'no-such-run')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no run with id no-such-run/) });
  expect(await twinflow('review', runId, 'nope')).toMatchObject({ code: 2, stderr: expect.stringMatching(/has no stage nope/) });
  expect(await twinflow('review', runId, 'after')).toMatchObject({ code: 2, stderr: expect.stringMatching(/core\/noop stage, not a review/) });

  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'review', runId, '--port', '0'], {
    cwd: path.resolve(import.meta.dirname, '../..'), env: { ...process.env, TEMPORAL_ADDRESS: h.address, TWINFLOW_HOME: h.home.root, TWINFLOW_USER: 'tester', DISPLAY: '' },
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = out.match(/review page: (\S+)/);
        if (found) resolve(found[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/#/runs/${runId}/stages/check$`));
    const info = await (await fetch(new URL('/api/runs/' + runId + '/stages/check', url))).json() as { progress: { total: number } };
    expect(info.progress.total).toBe(2);
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
  }
});
