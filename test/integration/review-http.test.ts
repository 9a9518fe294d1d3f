/**
 * The review server's API and its refusals, against a real dev server and run:
 * - claim, decide and recent work through HTTP; images are served by digest with their type
 * - local mode: the typed name is recorded as unauthenticated; control characters are stripped from names and notes
 * - path traversal and digests that are not the review's images are refused; nothing is read
 * - a closed review's images answer 409 like its API; every answer says Cross-Origin-Resource-Policy: same-origin
 * - with tokens: the page's files need none, every API call does (401); the person comes from the token, a `by`
 *   naming someone else is 403, assignees and approvers keep others out (403); no cookie is set or taken
 * - off loopback a token is generated for the person starting the server
 * - on loopback a foreign Host header is refused (DNS rebinding); POSTs from another origin are refused
 * - oversized bodies get 413, non-JSON 415, unknown runs and stages 404, bad decisions 400: nothing changes
 * - approvals are decided through the page's API; a rejection needs a note; a decided gate answers 409
 * - an approval names the stages it waits for, and the page reads their logs (control characters stripped)
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ArtifactRef } from '../../engine/types.js';
import { auditSnapshot, reviewProgress } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { StageLogs } from '../../activities/stage-log.js';
import { startHarness, type Harness } from './harness.js';
import { putImageItems, reviewPipeline } from '../support/review-items.js';

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
      build: { uses: 'core/shell', with: { run: 'echo "built 3 things"; printf "done\\033[31m red\\n"' } },
      gate: { uses: 'core/approval', needs: ['build'], with: { message: 'ship it?' } },
    },
  }));
  await h.waitFor(runId, 'both stages to wait', (s) => s.stages.check?.waitingFor === 'review' && s.stages.gate?.state === 'waiting');
  await reviewProgress(h.session, runId, 'check');
  server = await startReviewServer({ session: h.session, store, logs: new StageLogs(h.home), port: 0, defaultUser: 'tester' });
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
    expect((await auditSnapshot(h.session, runId, 'check')).pending).toMatchObject([{ by: 'ann', unauthenticated: true }]);
  });

  it('strips control characters from typed names and notes, keeping a note\'s lines', async () => {
    // Two items: the review stays open (its audit not yet flushed) after one decision.
    const two = (await putImageItems(store, 2, (i) => ({ metadata: { title: `typed names ${i}` } }))).ref;
    const run = await h.submit(reviewPipeline(two));
    await h.waitFor(run, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
    const [item] = (await (await post(`${stageUrl('check', run)}/claim`, { by: 'ann', count: 1 })).json() as { ids: string[] }).ids;
    const sent = await post(`${stageUrl('check', run)}/decisions`, { by: '\u001b]0;owned\u0007ann\u009b', decisions: [{ id: item, choice: 'accept', note: 'same\u001b[2J mug\r\nsame\tlid\u0000' }] });
    expect(sent.status).toBe(200);
    expect((await auditSnapshot(h.session, run, 'check')).pending).toMatchObject([{ by: ']0;ownedann', note: 'same[2J mug\nsame\tlid', unauthenticated: true }]);
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

  it('answers 409 for the images of a review that closed, as its API does', async () => {
    const one = await putImageItems(store, 1, () => ({ metadata: { title: 'a review that closes' } }));
    const run = await h.submit(reviewPipeline(one.ref));
    await h.waitFor(run, 'the review to open', (s) => s.stages.check?.waitingFor === 'review');
    const image = `${stageUrl('check', run)}/images/${one.images[0]}`;
    expect((await fetch(image)).status).toBe(200);
    await post(`${stageUrl('check', run)}/decisions`, { by: 'ann', decisions: [{ id: one.ids[0], choice: 'accept' }] });
    await h.result(run);
    const closed = await fetch(image);
    expect(closed.status).toBe(409);
    expect((await closed.json() as { error: string }).error).toMatch(/review check of run .* is closed/);
    expect((await fetch(stageUrl('check', run))).status).toBe(409);
  });

  it('tells browsers every answer is for this origin only', async () => {
    for (const url of [server.url, `${server.url}page.js`, `${server.url}api/waiting`, `${stageUrl()}/images/${items.images[1]}`, `${stageUrl()}/images/nope`]) {
      expect((await fetch(url)).headers.get('cross-origin-resource-policy'), url).toBe('same-origin');
    }
    expect((await fetch(server.url)).headers.get('content-security-policy')).toMatch(/img-src 'self' blob:;/);
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
    const waiting = await (await fetch(`${server.url}api/waiting`)).json() as { waiting: Array<{ runId: string; stage: string; kind: string }> };
    expect(waiting.waiting.filter((w) => w.runId === runId).map((w) => [w.stage, w.kind])).toEqual([['check', 'review'], ['gate', 'approval']]);
  });

  it('names the stages an approval waits for and serves their logs, without control characters', async () => {
    expect(await (await fetch(stageUrl('gate'))).json()).toMatchObject({ kind: 'approval', needs: ['build'] });
    const log = await (await fetch(`${stageUrl('build')}/log`)).json() as { log: string; truncated: boolean };
    expect(log.truncated).toBe(false);
    expect(log.log).toMatch(/^=== attempt 1 at .*\nbuilt 3 things\ndone\[31m red\n$/);
    expect(await (await fetch(`${stageUrl('check')}/log`)).json()).toEqual({ log: null, truncated: false });
    expect((await fetch(`${stageUrl('nope')}/log`)).status).toBe(404);
  });

  it('decides approvals, refusing a rejection without a note', async () => {
    const info = await (await fetch(stageUrl('gate'))).json();
    expect(info).toMatchObject({ kind: 'approval', state: 'waiting', message: 'ship it?' });
    expect((await post(`${stageUrl('gate')}/reject`, { by: 'ann' })).status).toBe(400);
    const ok = await post(`${stageUrl('gate')}/approve`, { by: 'ann', note: 'looks right' });
    expect(await ok.json()).toMatchObject({ state: 'succeeded', approval: { decision: 'approved', by: 'ann', note: 'looks right', unauthenticated: true } });
    const again = await post(`${stageUrl('gate')}/reject`, { by: 'bob', note: 'too late' });
    expect(again.status).toBe(409);
    expect((await again.json() as { error: string }).error).toMatch(/succeeded, not waiting/);
  });
});

describe('review server with a token per person', () => {
  let team: ReviewServer;
  let teamRun: string;
  let teamItems: { ref: ArtifactRef; ids: string[]; images: string[] };
  const ANN = 'ann-token-0123456789abcdef';
  const BOB = 'bob-token-0123456789abcdef';
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const teamUrl = (stage: string) => `${team.url}api/runs/${encodeURIComponent(teamRun)}/stages/${stage}`;

  beforeAll(async () => {
    teamItems = await putImageItems(store, 3);
    teamRun = await h.submit(JSON.stringify({
      name: 'review-team',
      stages: {
        check: { uses: 'core/review', with: { items: teamItems.ref, assignees: ['ann'] } },
        gate: { uses: 'core/approval', with: { message: 'ship it?', approvers: ['ann'] } },
      },
    }));
    await h.waitFor(teamRun, 'both stages to wait', (s) => s.stages.check?.waitingFor === 'review' && s.stages.gate?.state === 'waiting');
    team = await startReviewServer({ session: h.session, store, port: 0, defaultUser: 'tester', people: [{ name: 'ann', token: ANN }, { name: 'bob', token: BOB }] });
  });
  afterAll(async () => team?.close());

  it('prints a link per person and serves the page itself without a token, but no API call', async () => {
    expect(team.links).toEqual([{ name: 'ann', url: `${team.url}?token=${ANN}` }, { name: 'bob', url: `${team.url}?token=${BOB}` }]);
    const link = await fetch(team.links[0]!.url, { redirect: 'manual' });
    expect(link.status).toBe(200);
    expect(link.headers.get('set-cookie')).toBeNull();
    expect((await fetch(`${team.url}page.js`)).status).toBe(200);
    const refused: Array<Record<string, string>> = [{}, as('wrong-token-0123456789abcdef'), as(ANN.slice(0, -1)), { Cookie: `twinflow_review=${ANN}` }];
    for (const headers of refused) {
      const res = await fetch(`${team.url}api/waiting`, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect((await res.json() as { error: string }).error).toMatch(/open the review page with your own link/);
    }
    expect((await fetch(`${teamUrl('check')}/images/${teamItems.images[0]}`)).status).toBe(401);
    expect((await fetch(`${teamUrl('check')}/images/${teamItems.images[0]}`, { headers: as(ANN) })).status).toBe(200);
    expect(await (await fetch(`${team.url}api/me`, { headers: as(BOB) })).json()).toEqual({ user: 'bob', signedIn: true });
  });

  it('records the person the token names, refuses acting as someone else, and keeps non-assignees out', async () => {
    const claimed = await post(`${teamUrl('check')}/claim`, { count: 1 }, as(ANN));
    expect((await claimed.json() as { ids: string[] }).ids).toEqual([teamItems.ids[0]]);
    const posing = await post(`${teamUrl('check')}/decisions`, { by: 'bob', decisions: [{ id: teamItems.ids[0], choice: 'accept' }] }, as(ANN));
    expect(posing.status).toBe(403);
    expect((await posing.json() as { error: string }).error).toMatch(/you are signed in as ann and cannot act as "bob"; leave "by" out/);
    const bob = await post(`${teamUrl('check')}/decisions`, { decisions: [{ id: teamItems.ids[1], choice: 'accept' }] }, as(BOB));
    expect(bob.status).toBe(403);
    expect((await bob.json() as { error: string }).error).toMatch(/bob may not decide this review; assignees: ann/);
    expect((await post(`${teamUrl('check')}/claim`, { count: 1 }, as(BOB))).status).toBe(403);
    const ann = await post(`${teamUrl('check')}/decisions`, { decisions: [{ id: teamItems.ids[0], choice: 'accept', note: 'same' }] }, as(ANN));
    expect(ann.status).toBe(200);
    expect(await (await fetch(`${teamUrl('check')}/recent`, { headers: as(ANN) })).json()).toEqual({ decisions: [{ id: teamItems.ids[0], choice: 'accept' }] });
    const [record] = (await auditSnapshot(h.session, teamRun, 'check')).pending;
    expect(record).toMatchObject({ by: 'ann', note: 'same' });
    expect(record!.unauthenticated).toBeUndefined();
  });

  it('lets only an approver decide an approval, under the name their token carries', async () => {
    const bob = await post(`${teamUrl('gate')}/approve`, { note: 'fine by me' }, as(BOB));
    expect(bob.status).toBe(403);
    expect((await bob.json() as { error: string }).error).toMatch(/bob may not decide stage gate; approvers: ann/);
    expect((await post(`${teamUrl('gate')}/approve`, { by: 'ann' }, as(BOB))).status).toBe(403);
    const ann = await post(`${teamUrl('gate')}/approve`, { note: 'numbers match' }, as(ANN));
    const approved = await ann.json() as { approval: Record<string, unknown> };
    expect(approved).toMatchObject({ state: 'succeeded', approval: { decision: 'approved', by: 'ann', note: 'numbers match' } });
    expect(approved.approval).not.toHaveProperty('unauthenticated');
  });
});

describe('review server off loopback', () => {
  it('generates a token for the person who starts it and requires it on every API call', async () => {
    const open = await startReviewServer({ session: h.session, store, host: '0.0.0.0', port: 0, defaultUser: 'tester' });
    try {
      expect(open.links).toHaveLength(1);
      expect(open.openUrl).toBe(open.links[0]!.url);
      const token = new URL(open.openUrl).searchParams.get('token')!;
      expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      const api = `${open.url}api/waiting`;
      expect((await fetch(api)).status).toBe(401);
      expect((await fetch(api, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await post(`${open.url}api/runs/${runId}/stages/check/decisions`, { decisions: [{ id: items.ids[2], choice: 'reject' }] })).status).toBe(401);
      expect((await fetch(api, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      expect(await (await fetch(`${open.url}api/me`, { headers: { Authorization: `Bearer ${token}` } })).json()).toEqual({ user: 'tester', signedIn: true });
      expect(await votes()).toBe(1);
    } finally {
      await open.close();
    }
  });
});
