/**
 * The review page in real Chromium (Debian's `chromium`, headless), against a real dev
 * server and run:
 * - open a waiting review from the page's list; untrusted titles show as text, never as HTML
 * - decide items with the keyboard (y, n, digits), one with a note; undo one with u (it comes back on screen)
 * - reload: the decided count and the undo stack are still there
 * - a second reviewer at the same time is not handed the items the first one holds
 * - zoom an image; move with the arrows; finish the stage and see the run go on
 * - an approval gate decided on the page, a rejection asking for a note first, with the log of the stage it waits for
 * - keys faster than the answers: no item is shown (and sent) twice, every decision lands
 * - a listing with three candidates in one row, counts 0-3 by their digit
 * - a review that closed under the reviewer (deadline) says so
 * A screenshot of the page is kept in test/e2e/artifacts/review-page.png.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { Decision } from '../../activities/review/items.js';
import type { ArtifactRef } from '../../engine/types.js';
import { reviewProgress } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { StageLogs } from '../../activities/stage-log.js';
import { startHarness, type Harness } from '../integration/harness.js';
import { browserTests, launchChromium } from './chromium.js';
import { putImageItems, reviewPipeline } from '../support/review-items.js';

const artifacts = path.join(import.meta.dirname, 'artifacts');
const { skip, test } = browserTests('review page');

let h: Harness;
let server: ReviewServer;
let browser: Browser;

beforeAll(async () => {
  if (skip) return;
  h = await startHarness();
  process.env.TWINFLOW_HOME = h.home.root;
  server = await startReviewServer({ session: h.session, store: new ArtifactStore(h.home.artifactsDir), logs: new StageLogs(h.home), port: 0, defaultUser: 'rita' });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await h?.stop();
});

/** Script errors and console errors (a CSP refusal, a failed image) of a page. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => (msg.type() === 'error' ? errors.push(`${msg.text()} ${msg.location().url}`) : undefined));
  return errors;
}
const status = (page: Page, text: RegExp) => page.locator('.status', { hasText: text }).waitFor();
/** Waits until `n` images of the item on screen are fetched (the page shows them as blob: URLs) and decoded. */
async function shown(page: Page, n: number): Promise<void> {
  await expect.poll(() => page.locator('figure img[src^="blob:"]').count()).toBe(n);
  await Promise.all((await page.locator('figure img').all()).map((img) => img.evaluate((el: HTMLImageElement) => el.decode())));
}
const current = (page: Page) => page.locator('article.item').getAttribute('data-item');

test('reviews with the keyboard, survives a reload, and lets the run go on', { timeout: 180_000 }, async () => {
  const store = new ArtifactStore(h.home.artifactsDir);
  const hostile = '<img src=x onerror="window.__owned=1">Mug & co';
  const { ref, ids } = await putImageItems(store, 5, (i) => (i === 0 ? { metadata: { title: hostile, category: 'Mugs' } } : {}));
  const runId = await h.submit(reviewPipeline(ref as ArtifactRef, { title: 'Same mug?' }));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  await reviewProgress(h.session, runId, 'check');

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await page.goto(server.url);
  await page.getByRole('link', { name: 'check' }).click();
  await page.locator('article.item').waitFor();
  expect(await current(page)).toBe(ids[0]);
  expect(await page.locator('dd', { hasText: hostile }).count()).toBe(1);
  expect(await page.locator('dl.meta img').count()).toBe(0);
  expect(await page.evaluate(() => (window as { __owned?: number }).__owned)).toBeUndefined();
  await shown(page, 2);
  await fs.mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, 'review-page.png') });

  const second = await browser.newPage();
  await second.goto(`${server.url}#/runs/${runId}/stages/check`);
  await second.locator('#who').fill('sam');
  await second.locator('#who').dispatchEvent('change');
  await second.getByText('Nothing for you right now').waitFor();
  expect(await second.locator('article.item').count()).toBe(0);
  await second.close();

  await page.locator('#item-note').fill('same handle, same chip');
  await page.locator('#item-note').press('Enter');
  await page.keyboard.press('y');
  await status(page, new RegExp(`saved: ${ids[0]} → accept`));
  await page.keyboard.press('n');
  await status(page, new RegExp(`saved: ${ids[1]} → reject`));
  await page.keyboard.press('u');
  await status(page, new RegExp(`undone: ${ids[1]} \\(was reject\\)`));
  expect(await current(page)).toBe(ids[1]);
  expect((await reviewProgress(h.session, runId, 'check')).decided).toBe(1);
  await page.keyboard.press('2');
  await status(page, new RegExp(`saved: ${ids[1]} → reject`));

  await page.reload();
  await page.locator('article.item').waitFor();
  await page.locator('.count', { hasText: '2 of 5 decided' }).waitFor();
  await page.keyboard.press('u');
  await status(page, new RegExp(`undone: ${ids[1]} \\(was reject\\)`));
  await page.keyboard.press('y');
  await status(page, new RegExp(`saved: ${ids[1]} → accept`));

  await page.locator('figure img').first().click();
  expect(await page.locator('#zoom').isVisible()).toBe(true);
  await page.keyboard.press('Escape');
  expect(await page.locator('#zoom').isVisible()).toBe(false);
  expect(await current(page)).toBe(ids[2]);
  await page.keyboard.press('ArrowRight');
  expect(await current(page)).toBe(ids[3]);
  await page.keyboard.press('n');
  await status(page, new RegExp(`saved: ${ids[3]} → reject`));
  for (let i = 0; i < 2; i++) {
    const id = await current(page);
    await page.keyboard.press('y');
    if (i === 0) await status(page, new RegExp(`saved: ${id} → accept`));
  }
  await page.getByRole('heading', { name: 'All items are decided' }).waitFor();
  expect(errors).toEqual([]);

  const run = await h.result(runId);
  expect(run.state).toBe('succeeded');
  expect(run.stages.after!.state).toBe('succeeded');
  const out = run.stages.check!.outputs as unknown as { decisions: ArtifactRef };
  const decisions = (await fs.readFile((await store.file(out.decisions)), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Decision);
  expect(decisions[0]!.note).toBe('same handle, same chip');
  expect(decisions.map((d) => [d.id, d.choice, d.by])).toEqual([
    [ids[0], 'accept', 'rita'], [ids[1], 'accept', 'rita'], [ids[2], 'accept', 'rita'], [ids[3], 'reject', 'rita'], [ids[4], 'accept', 'rita'],
  ]);
});

test('approves a gate from the page, asking for a note before a rejection', async () => {
  const runId = await h.submit(JSON.stringify({
    name: 'gate-page',
    stages: {
      count: { uses: 'core/shell', with: { run: 'echo "counted 42 rows"' } },
      gate: { uses: 'core/approval', needs: ['count'], with: { message: 'Numbers look right?' } },
      after: { uses: 'core/noop', needs: ['gate'] },
    },
  }));
  await h.waitFor(runId, 'the gate', (s) => s.stages.gate?.state === 'waiting');
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.locator('li', { hasText: runId }).getByRole('link', { name: 'gate' }).click();
  await page.getByText('Numbers look right?').waitFor();
  await page.getByRole('button', { name: 'log of count' }).click();
  await expect.poll(() => page.locator('pre.log').textContent()).toContain('counted 42 rows');
  await page.getByRole('button', { name: 'reject' }).click();
  await page.getByText('a rejection needs a note saying why').waitFor();
  await page.locator('#note').fill('checked the totals');
  await page.getByRole('button', { name: 'approve' }).click();
  await page.getByText('approved; the stage is now succeeded').waitFor();
  const run = await h.result(runId);
  expect(run.stages.gate!.approval).toMatchObject({ decision: 'approved', by: 'rita', note: 'checked the totals' });
  expect(run.state).toBe('succeeded');
});

test('never shows an item again while its decision is on its way, however fast the keys come', async () => {
  const store = new ArtifactStore(h.home.artifactsDir);
  const { ref } = await putImageItems(store, 30);
  const runId = await h.submit(reviewPipeline(ref as ArtifactRef));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  const page = await browser.newPage();
  const sent: string[] = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/decisions')) sent.push(...(req.postDataJSON() as { decisions: Array<{ id: string }> }).decisions.map((d) => d.id));
  });
  await page.goto(`${server.url}#/runs/${runId}/stages/check`);
  await page.locator('article.item').waitFor();
  // The first dozen (all claimed at once) faster than their answers come; then an item on
  // screen before each key, still not waiting for decisions to arrive.
  for (let i = 0; i < 12; i++) await page.keyboard.press('y');
  for (let i = 0; i < 12; i++) {
    await page.locator('article.item').waitFor();
    await page.keyboard.press('y');
  }
  await page.locator('.status', { hasText: /^saved: / }).waitFor();
  await expect.poll(async () => (await reviewProgress(h.session, runId, 'check')).decided).toBe(new Set(sent).size);
  expect(sent.length).toBe(24);
  expect(sent).toEqual([...new Set(sent)]);
});

test('shows a listing with three candidates in one row and takes counts 0-3 by their digit', async () => {
  const store = new ArtifactStore(h.home.artifactsDir);
  const { ref, ids } = await putImageItems(store, 2, () => ({ question: 'How many candidates show the same mug as the listing?' }), 4);
  const runId = await h.submit(reviewPipeline(ref as ArtifactRef, { choices: ['0', '1', '2', '3'] }));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${server.url}#/runs/${runId}/stages/check`);
  await page.getByText('How many candidates show the same mug as the listing?').waitFor();
  const figures = page.locator('figure img');
  await shown(page, 4);
  const tops = await Promise.all((await figures.all()).map(async (img) => (await img.boundingBox())!.y));
  expect(tops).toEqual([tops[0], tops[0], tops[0], tops[0]]);
  expect(await page.locator('.choices kbd').allTextContents()).toEqual(['0', '1', '2', '3']);
  await page.screenshot({ path: path.join(artifacts, 'review-page-candidates.png') });
  await page.keyboard.press('3');
  await status(page, new RegExp(`saved: ${ids[0]} → 3`));
  await page.keyboard.press('0');
  await page.getByRole('heading', { name: 'All items are decided' }).waitFor();
  expect(errors).toEqual([]);
  const run = await h.result(runId);
  const out = run.stages.check!.outputs as unknown as { decisions: ArtifactRef };
  const decisions = (await fs.readFile((await store.file(out.decisions)), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Decision);
  expect(decisions.map((d) => [d.id, d.choice])).toEqual([[ids[0], '3'], [ids[1], '0']]);
});

test('says so when the review closed under the reviewer (a deadline accepted the rest)', async () => {
  const store = new ArtifactStore(h.home.artifactsDir);
  const { ref } = await putImageItems(store, 3);
  const runId = await h.submit(reviewPipeline(ref as ArtifactRef, { deadline: '4s', onDeadline: 'accept-remaining' }));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  const page = await browser.newPage();
  await page.goto(`${server.url}#/runs/${runId}/stages/check`);
  await page.locator('article.item').waitFor();
  await h.waitFor(runId, 'the deadline', (s) => s.stages.check?.state === 'succeeded');
  await page.keyboard.press('y');
  await page.getByRole('heading', { name: 'This review has closed' }).waitFor();
  await page.getByText(/review check of run .* is closed/).waitFor();
  expect((await h.result(runId)).state).toBe('succeeded');
});
