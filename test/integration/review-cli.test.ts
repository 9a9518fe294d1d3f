/**
 * `twinflow review decide` and `twinflow review export` against a real dev server:
 * - status shows an open review with its progress and the command to open it
 * - a decisions file with bad lines is refused with line numbers and nothing is sent
 * - a good file is applied in batches; sending it again applies nothing twice
 * - export while open writes the decisions so far and the audit; after close, the stage's outputs
 * - `twinflow review RUN` serves the page at that run's open review; unknown runs and stages are refused
 * - `--reviewer NAME` prints a signed link per person (the same after a restart, its secret mode 0600);
 *   `--reviewers FILE` takes a team's own tokens; each link signs its person in, nothing else does
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

  await fs.writeFile(path.join(dir, 'last.jsonl'), JSON.stringify({ id: ids[3], choice: 'no', note: 'blurry\u001b[2J' }));
  expect((await twinflow('review', 'decide', runId, 'check', '--file', 'last.jsonl', '--as', 'ann\u0007')).code).toBe(0);
  await h.result(runId);
  const closed = await twinflow('review', 'export', runId, 'check', '--decisions', 'final.jsonl');
  expect(closed.stdout).toMatch(/check \(closed\): 4 decisions -> final.jsonl/);
  expect((await lines('final.jsonl')).map((d) => d.choice)).toEqual(['yes', 'no', 'unsure', 'no']);
  await twinflow('review', 'export', runId, 'check', '--audit', 'final-audit.jsonl');
  expect((await lines('final-audit.jsonl')).at(-1)).toMatchObject({ id: ids[3], by: 'ann', note: 'blurry[2J' });
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

  const page = await servePage('review', runId, '--port', '0');
  try {
    const url = page.out.match(/review page: (\S+)/)![1]!;
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/#/runs/${runId}/stages/check$`));
    expect(page.out).toMatch(/local mode: .*recorded as unauthenticated/);
    const info = await (await fetch(new URL('/api/runs/' + runId + '/stages/check', url))).json() as { progress: { total: number } };
    expect(info.progress.total).toBe(2);
  } finally {
    await page.stop();
  }
});

it('prints a signed link per reviewer that still works after a restart, and takes a reviewers file', async () => {
  const { ref } = await putReviewItems(new ArtifactStore(h.home.artifactsDir), 3);
  const runId = await h.submit(reviewPipeline(ref));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  await fs.writeFile(path.join(dir, 'team.yaml'), 'cat: cat-own-token-0123456789\n');
  const links = async (...args: string[]) => {
    const page = await servePage('review', runId, '--port', '0', ...args);
    try {
      const found = Object.fromEntries([...page.out.matchAll(/review page for (\S+): (\S+)/g)].map((m) => [m[1]!, m[2]!]));
      const me = async (link: string, token = new URL(link).searchParams.get('token')!) =>
        (await (await fetch(new URL('/api/me', link), { headers: { Authorization: `Bearer ${token}` } })).json()) as { user?: string };
      const users = await Promise.all(Object.values(found).map((link) => me(link)));
      const stranger = await fetch(new URL('/api/me', Object.values(found)[0]!));
      return { found, users: users.map((u) => u.user), stranger: stranger.status, out: page.out };
    } finally {
      await page.stop();
    }
  };
  const first = await links('--reviewer', 'ann', '--reviewer', 'bob', '--reviewers', path.join(dir, 'team.yaml'));
  expect(Object.keys(first.found)).toEqual(['ann', 'bob', 'cat']);
  expect(first.users).toEqual(['ann', 'bob', 'cat']);
  expect(first.stranger).toBe(401);
  expect(first.found.ann).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/\\?token=[A-Za-z0-9_-]{43}#/runs/${runId}/stages/check$`));
  expect(first.found.cat).toMatch(/\?token=cat-own-token-0123456789#/);
  expect(first.out).not.toMatch(/local mode/);
  expect((await fs.stat(path.join(h.home.root, 'review-secret'))).mode & 0o777).toBe(0o600);
  const token = (link: string) => new URL(link).searchParams.get('token');
  const again = await links('--reviewer', 'bob', '--reviewer', 'ann');
  expect([token(again.found.ann!), token(again.found.bob!)]).toEqual([token(first.found.ann!), token(first.found.bob!)]);
  expect(token(first.found.ann!)).not.toBe(token(first.found.bob!));
});

/** `twinflow ARGS` serving the page until stopped; `out` holds what it printed up to the Ctrl-C line. */
async function servePage(...args: string[]): Promise<{ out: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    cwd: path.resolve(import.meta.dirname, '../..'), env: { ...process.env, TEMPORAL_ADDRESS: h.address, TWINFLOW_HOME: h.home.root, TWINFLOW_USER: 'tester', DISPLAY: '' },
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  };
  const out = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (/Ctrl-C stops the page/.test(text)) resolve(text);
    });
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${text}`)));
  }).catch(async (err) => { await stop(); throw err; });
  return { out, stop };
}
