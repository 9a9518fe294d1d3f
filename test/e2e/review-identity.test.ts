/**
 * Who is on the review page, in real Chromium (Debian's `chromium`, headless), against a
 * real dev server and run:
 * - a personal link signs its person in: the page shows the name and no name box, the
 *   token leaves the address bar, decisions are recorded under that name
 * - two review servers on one host, open in one browser: each page keeps its own token (a
 *   tab opened later without the link too), neither server is ever sent the other's
 *   token, and no cookie is ever sent
 * - two people's links in two tabs of one browser stay two people
 * - a page that closes hands its items back: a second reviewer gets them at once
 * - a person who is not an assignee is told so on the page
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { auditSnapshot, reviewProgress } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { startHarness, type Harness } from '../integration/harness.js';
import { browserTests, launchChromium } from './chromium.js';
import { putImageItems, reviewPipeline } from '../support/review-items.js';
import { headerLog } from './header-log.js';

const { skip, test } = browserTests('review identity');

let h: Harness;
let store: ArtifactStore;
let browser: Browser;
const servers: ReviewServer[] = [];
const ANN = 'ann-token-on-server-a-0123456789';
const BOB = 'bob-token-on-server-b-0123456789';

beforeAll(async () => {
  if (skip) return;
  h = await startHarness();
  process.env.TWINFLOW_HOME = h.home.root;
  store = new ArtifactStore(h.home.artifactsDir);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  await h?.stop();
});

async function serve(people: Array<{ name: string; token: string }>): Promise<ReviewServer> {
  const server = await startReviewServer({ session: h.session, store, port: 0, defaultUser: 'nobody', people });
  servers.push(server);
  return server;
}

async function openReview(title: string, n: number, review: Record<string, unknown> = {}): Promise<{ runId: string; ids: string[] }> {
  const { ref, ids } = await putImageItems(store, n, (i) => ({ metadata: { title: `${title} ${i}` } }));
  const runId = await h.submit(reviewPipeline(ref, { title, ...review }));
  await h.waitFor(runId, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
  await reviewProgress(h.session, runId, 'check');
  return { runId, ids };
}

const at = (base: string, token: string, runId: string) => `${base}?token=${token}#/runs/${runId}/stages/check`;
const status = (page: Page, text: RegExp) => page.locator('.status', { hasText: text }).waitFor();

test('keeps each server\'s token to that server when two run on one host, and never sends a cookie', { timeout: 120_000 }, async () => {
  // More items than two pages claim (a dozen each): each person sees their own.
  const { runId } = await openReview('Two servers', 30);
  const [a, b] = [await serve([{ name: 'ann', token: ANN }]), await serve([{ name: 'bob', token: BOB }])];
  const [logA, logB] = [await headerLog(a.url), await headerLog(b.url)];
  try {
    const context = await browser.newContext();
    const pageA = await context.newPage();
    await pageA.goto(at(logA.url, ANN, runId));
    await pageA.locator('article.item').waitFor();
    const pageB = await context.newPage();
    await pageB.goto(at(logB.url, BOB, runId));
    await pageB.locator('article.item').waitFor();
    expect(await pageA.evaluate(() => location.href)).toBe(`${logA.url}#/runs/${runId}/stages/check`);
    expect(await pageB.locator('#signed-in').textContent()).toBe('bob');
    expect(await pageB.locator('#who').count()).toBe(0);

    // After the other server's page opened, and after a reload, each page still acts as its own person.
    await pageA.reload();
    await pageA.locator('article.item').waitFor();
    const [itemA, itemB] = [await pageA.locator('article.item').getAttribute('data-item'), await pageB.locator('article.item').getAttribute('data-item')];
    expect(itemA).not.toBe(itemB);
    await pageA.keyboard.press('y');
    await status(pageA, new RegExp(`saved: ${itemA} → accept`));
    await pageB.keyboard.press('n');
    await status(pageB, new RegExp(`saved: ${itemB} → reject`));
    await pageA.locator('figure img[src^="blob:"]').first().waitFor();
    // A tab opened later without the link is still the person whose link this browser opened there.
    const laterA = await context.newPage();
    await laterA.goto(`${logA.url}#/runs/${runId}/stages/check`);
    await laterA.locator('article.item').waitFor();
    expect(await laterA.locator('#signed-in').textContent()).toBe('ann');
    await context.close();

    const records = (await auditSnapshot(h.session, runId, 'check')).pending;
    expect(records.map((r) => [r.id, r.by, r.unauthenticated])).toEqual([[itemA, 'ann', undefined], [itemB, 'bob', undefined]]);
    for (const [log, own, other] of [[logA, ANN, BOB], [logB, BOB, ANN]] as const) {
      const api = log.seen.filter((r) => r.url.startsWith('/api/'));
      expect(api.length).toBeGreaterThan(4);
      expect(api.every((r) => r.authorization === `Bearer ${own}`), JSON.stringify(api)).toBe(true);
      expect(log.seen.filter((r) => r.cookie)).toEqual([]);
      expect(JSON.stringify(log.seen)).not.toContain(other);
      // The link's token reached its own server once, in the address of the first page load.
      expect(log.seen.filter((r) => r.url.includes(own)).map((r) => r.url)).toEqual([`/?token=${own}`]);
    }
  } finally {
    await logA.close();
    await logB.close();
  }
});

test('hands the items of a page that closes to the next reviewer at once', { timeout: 120_000 }, async () => {
  const { runId, ids } = await openReview('Closing pages', 5);
  const server = await serve([{ name: 'ann', token: 'ann-token-closing-0123456789' }, { name: 'bob', token: 'bob-token-closing-0123456789' }]);
  const context = await browser.newContext();
  const ann = await context.newPage();
  await ann.goto(at(server.url, 'ann-token-closing-0123456789', runId));
  await ann.locator('article.item').waitFor();
  expect(await ann.locator('.muted', { hasText: 'held for you' }).textContent()).toMatch(/item 1 of 5 held for you/);
  const bob = await context.newPage();
  await bob.goto(at(server.url, 'bob-token-closing-0123456789', runId));
  await bob.getByText('Nothing for you right now').waitFor();
  // One browser, two tabs, two people: bob's link did not make ann's tab bob's.
  expect([await ann.locator('#signed-in').textContent(), await bob.locator('#signed-in').textContent()]).toEqual(['ann', 'bob']);

  // The lease is 10 minutes; bob gets the items long before it lapses.
  await ann.close({ runBeforeUnload: true });
  await expect.poll(async () => {
    await bob.getByRole('button', { name: 'look again' }).click().catch(() => undefined);
    return bob.locator('article.item').getAttribute('data-item', { timeout: 500 }).catch(() => null);
  }, { timeout: 10_000 }).toBe(ids[0]);
  expect(await bob.locator('.muted', { hasText: 'held for you' }).textContent()).toMatch(/item 1 of 5 held for you/);
  await context.close();
});

test('tells a person who is not an assignee that they may not decide the review', async () => {
  const { runId } = await openReview('Assigned', 2, { assignees: ['ann'] });
  const server = await serve([{ name: 'ann', token: 'ann-token-assigned-0123456789' }, { name: 'eve', token: 'eve-token-assigned-0123456789' }]);
  const page = await browser.newPage();
  await page.goto(at(server.url, 'eve-token-assigned-0123456789', runId));
  await page.getByText(/eve may not decide this review; assignees: ann/).waitFor();
  expect(await page.locator('article.item').count()).toBe(0);
  // Signed in still after a reload, the token long gone from the address bar.
  await page.goto(`${server.url}#/`);
  await page.reload();
  await page.getByRole('link', { name: 'check' }).first().waitFor();
  expect(await page.locator('#signed-in').textContent()).toBe('eve');
  const stranger = await browser.newPage();
  await stranger.goto(`${server.url}#/runs/${runId}/stages/check`);
  await stranger.getByText(/open the review page with your own link/).waitFor();
  await page.close();
  await stranger.close();
});
