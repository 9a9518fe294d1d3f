/**
 * The review server's API and its refusals, against a real dev server and run:
 * - claim, decide and recent work through HTTP; images are served by digest with their type
 * - path traversal and digests that are not the review's images are refused; nothing is read
 * - off loopback a token is required: none or a wrong one gets 401, the right one (header or cookie) works
 * - on loopback a foreign Host header is refused (DNS rebinding); POSTs from another origin are refused
 * - oversized bodies get 413, non-JSON 415, unknown runs and stages 404, bad decisions 400: nothing changes
 * - approvals are decided through the page's API; a rejection needs a note; a decided gate answers 409
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { reviewProgress } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { startHarness, type Harness } from './harness.js';
import { putImageItems } from '../support/review-items.js';

let h: Harness;
let store: ArtifactStore;
let server: ReviewServer;
let runId: string;
let items: { ref: ArtifactRef; ids: string[]; images: string[] };

beforeAll(async () => {
  h = await startHarness();
  process.env.TWINFLOW_HOME = h.home.root;
  store = new ArtifactStore(h.home.artifactsDir);
  items = await putImageItems(store, 3, (i) => ({ metadata: { title: `<img src=x onerror=alert(${i})>` } }));
  runId = await h.submit(JSON.stringify({
    name: 'review-http',
    stages: {
      check: { uses: 'core/review', with: { items: items.ref } },
      gate: { uses: 'core/approval', with: { message: 'ship it?' } },
    },
  }));
  await h.waitFor(runId, 'both stages to wait', (s) => s.stages.check?.waitingFor === 'review' && s.stages.gate?.state === 'waiting');
  await reviewProgress(h.session, runId, 'check');
  server = await startReviewServer({ session: h.session, store, port: 0, defaultUser: 'tester' });
});
afterAll(async () => {
  await server?.close();
  await h?.stop();
});

const stageUrl = (stage = 'check', run = runId) => `${server.url}api/runs/${encodeURIComponent(run)}/stages/${stage}`;
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
/** A request fetch cannot make (its own Host header, a body the server refuses before reading it). */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    // The server may answer and close before the whole body is written: the answer is what counts.
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    req.end(opts.body);
  });
}
const votes = async () => (await reviewProgress(h.session, runId, 'check')).votes;

describe('review server', () => {
  it('claims items with their metadata as data, takes a decision, and serves item images by digest', async () => {
    const claim = await post(`${stageUrl()}/claim`, { by: 'ann', count: 2 });
    expect(claim.status).toBe(200);
    const body = await claim.json() as { ids: string[]; items: Array<{ id: string; metadata: { title: string }; images: Array<{ sha256: string; path?: string }> }> };
    expect(body.ids).toEqual(items.ids.slice(0, 2));
    expect(body.items[0]!.metadata.title).toBe('<img src=x onerror=alert(0)>');
    expect(body.items[0]!.images[0]!.path).toBeUndefined();
    const image = await fetch(`${stageUrl()}/images/${items.images[0]}`);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/jpeg');
    expect(image.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const decided = await post(`${stageUrl()}/decisions`, { by: 'ann', decisions: [{ id: items.ids[0], choice: 'accept' }] });
    expect(await decided.json()).toMatchObject({ applied: 1, progress: { decided: 1 } });
    const recent = await fetch(`${stageUrl()}/recent?by=ann`);
    expect(await recent.json()).toEqual({ decisions: [{ id: items.ids[0], choice: 'accept' }] });
  });

  it('refuses path traversal and digests that are not this review\'s images', async () => {
    const other = (await store.putBytes('not an item image')).sha256;
    for (const [path, status] of [
      ['..%2F..%2F..%2Fetc%2Fpasswd', 400], ['%2Fetc%2Fpasswd', 400], ['....%2F%2Fetc', 400],
      [items.images[0]!.toUpperCase(), 400], [`${items.images[0]}.jpg`, 400], [other, 404], ['0'.repeat(64), 404],
    ] as const) {
      const res = await fetch(`${stageUrl()}/images/${path}`);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type'), path).toMatch(/json/);
    }
    const raw = await fetch(`${server.url}api/runs/${runId}/stages/check/images/../../../../etc/passwd`);
    expect(raw.status).toBe(404);
  });

  it('refuses oversized and non-JSON bodies, unknown runs and stages, and bad decisions, changing nothing', async () => {
    const before = await votes();
    const huge = { by: 'ann', decisions: [{ id: items.ids[1], choice: 'accept', note: 'x'.repeat(1_200_000) }] };
    const body = JSON.stringify(huge);
    expect(await raw(`${stageUrl()}/decisions`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body })).toBe(413);
    expect((await fetch(`${stageUrl()}/decisions`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await post(`${stageUrl()}/decisions`, '{not json')).status).toBe(400);
    expect((await post(`${stageUrl('check', 'no-such-run')}/decisions`, { by: 'ann', decisions: [] })).status).toBe(404);
    expect((await fetch(stageUrl('nope'))).status).toBe(404);
    const unknown = await post(`${stageUrl()}/decisions`, { by: 'ann', decisions: [{ id: 'ghost', choice: 'accept' }] });
    expect(unknown.status).toBe(400);
    expect((await unknown.json() as { error: string }).error).toMatch(/unknown item/);
    expect((await post(`${stageUrl()}/decisions`, { by: 'ann', decisions: [{ id: items.ids[1], choice: 'maybe' }] })).status).toBe(400);
    expect((await post(`${stageUrl()}/decisions`, { by: '', decisions: [{ id: items.ids[1], choice: 'accept' }] })).status).toBe(400);
    expect(await votes()).toBe(before);
  });

  it('refuses POSTs another site\'s page sends, changing nothing', async () => {
    const before = await votes();
    const body = JSON.stringify({ by: 'ann', decisions: [{ id: items.ids[2], choice: 'reject' }] });
    for (const origin of ['http://evil.example', 'null', `http://localhost:${new URL(server.url).port}`]) {
      expect(await raw(`${stageUrl()}/decisions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: origin }, body }), origin).toBe(403);
    }
    expect(await votes()).toBe(before);
  });

  it('refuses a foreign Host header on loopback', async () => {
    expect(await raw(`${server.url}api/waiting`, { headers: { Host: 'evil.example:80' } })).toBe(403);
    expect(await raw(`${server.url}api/me`, { headers: { Host: new URL(server.url).host } })).toBe(200);
    const waiting = await (await fetch(`${server.url}api/waiting`)).json() as { waiting: Array<{ stage: string; kind: string }> };
    expect(waiting.waiting.map((w) => [w.stage, w.kind])).toEqual([['check', 'review'], ['gate', 'approval']]);
  });

  it('decides approvals, refusing a rejection without a note', async () => {
    const info = await (await fetch(stageUrl('gate'))).json();
    expect(info).toMatchObject({ kind: 'approval', state: 'waiting', message: 'ship it?' });
    expect((await post(`${stageUrl('gate')}/reject`, { by: 'ann' })).status).toBe(400);
    const ok = await post(`${stageUrl('gate')}/approve`, { by: 'ann', note: 'looks right' });
    expect(await ok.json()).toMatchObject({ state: 'succeeded', approval: { decision: 'approved', by: 'ann', note: 'looks right' } });
    const again = await post(`${stageUrl('gate')}/reject`, { by: 'bob', note: 'too late' });
    expect(again.status).toBe(409);
    expect((await again.json() as { error: string }).error).toMatch(/succeeded, not waiting/);
  });
});

describe('review server off loopback', () => {
  it('requires the token on every request and accepts it as a header or as the cookie the page link sets', async () => {
    const open = await startReviewServer({ session: h.session, store, host: '0.0.0.0', port: 0, defaultUser: 'tester' });
    try {
      expect(open.token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      const api = `${open.url}api/waiting`;
      expect((await fetch(api)).status).toBe(401);
      expect((await fetch(api, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${open.url}?token=wrong`, { redirect: 'manual' })).status).toBe(401);
      expect((await post(`${open.url}api/runs/${runId}/stages/check/decisions`, { by: 'ann', decisions: [{ id: items.ids[2], choice: 'reject' }] })).status).toBe(401);
      expect((await fetch(api, { headers: { Authorization: `Bearer ${open.token}` } })).status).toBe(200);
      const link = await fetch(open.openUrl, { redirect: 'manual' });
      expect(link.status).toBe(303);
      const cookie = link.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Strict/i);
      expect((await fetch(api, { headers: { Cookie: cookie.split(';')[0]! } })).status).toBe(200);
      expect(await votes()).toBe(1);
    } finally {
      await open.close();
    }
  });
});
