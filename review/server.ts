import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve, type ServerType } from '@hono/node-server';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { ArtifactStore } from '../activities/artifact-store.js';
import type { Session } from '../cli/client.js';
import type { ArtifactRef } from '../engine/types.js';
import { approveUpdate, rejectUpdate } from '../workflows/messages.js';
import { claimItems, decideItems, listWaiting, recentDecisions, reviewProgress, ReviewRequestError, runStatus } from './queue-client.js';
import { hostGuard, isLoopback, jsonOnly, sameOrigin, securityHeaders, tokenGuard } from './guard.js';
import { imageType, itemIndex } from './item-index.js';
import { pageAssets } from './assets.js';

export interface ReviewServerOptions {
  session: Session;
  store: ArtifactStore;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 7300 */
  port?: number;
  /** Required off loopback; generated when absent there. */
  token?: string;
  /** The name the page suggests to a new reviewer. */
  defaultUser: string;
}

export interface ReviewServer {
  url: string;
  /** The URL with the token, to open the page (equal to `url` without a token). */
  openUrl: string;
  token?: string;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;
const STATUS = { 'not-found': 404, invalid: 400, closed: 409 } as const;

/**
 * The review page and its JSON API. A Temporal client only: decisions go to the review
 * workflow as updates, images come from the artifact store by digest.
 */
export function reviewApp(opts: Required<Pick<ReviewServerOptions, 'host' | 'port'>> & ReviewServerOptions): Hono {
  const { session, store } = opts;
  const app = new Hono();
  app.use('*', securityHeaders(), hostGuard(opts.host, opts.port, opts.token), tokenGuard(opts.token), sameOrigin(), jsonOnly());
  app.use('/api/*', bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.json({ error: `request body over ${MAX_BODY} bytes; send decisions in smaller batches` }, 413) }));
  app.onError((err, c) => {
    if (err instanceof ReviewRequestError) return c.json({ error: err.message }, STATUS[err.kind]);
    if (err instanceof WorkflowUpdateFailedError) return refusedUpdate(c, err.cause?.message ?? err.message);
    if (err instanceof BadRequest) return c.json({ error: err.message }, 400);
    console.error(`review server: ${(err as Error).stack ?? err}`);
    return c.json({ error: 'internal error; see the server output' }, 500);
  });

  app.get('/', async (c) => c.html((await pageAssets()).html));
  app.get('/page.js', async (c) => c.body((await pageAssets()).js, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }));
  app.get('/page.css', async (c) => c.body((await pageAssets()).css, 200, { 'Content-Type': 'text/css; charset=utf-8' }));

  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/api/me', (c) => c.json({ user: opts.defaultUser }));
  app.get('/api/waiting', async (c) => c.json({ waiting: await listWaiting(session) }));
  app.get('/api/runs/:run/stages/:stage', async (c) => {
    const { run, stage } = c.req.param();
    const status = await runStatus(session, run);
    const rec = status.stages[stage];
    if (!rec) throw new ReviewRequestError('not-found', `run ${run} has no stage ${stage}`);
    if (rec.uses === 'core/approval') return c.json({ kind: 'approval', state: rec.state, message: rec.message ?? null, approvers: rec.approvers ?? [], approval: rec.approval ?? null });
    return c.json({ kind: 'review', progress: await reviewProgress(session, run, stage) });
  });

  app.post('/api/runs/:run/stages/:stage/claim', async (c) => {
    const { run, stage } = c.req.param();
    const body = await jsonBody(c);
    const claimed = await claimItems(session, run, stage, text(body.by, 'by'), Number(body.count ?? 10), strings(body.release));
    const { items } = await itemIndex(store, claimed.progress.items);
    return c.json({ ...claimed, items: claimed.ids.map((id) => items.get(id)).filter(Boolean) });
  });
  app.post('/api/runs/:run/stages/:stage/decisions', async (c) => {
    const { run, stage } = c.req.param();
    const body = await jsonBody(c);
    if (!Array.isArray(body.decisions)) throw new BadRequest('send {"by": NAME, "decisions": [{"id", "choice"} or {"id", "undo": true}]}');
    return c.json(await decideItems(session, run, stage, text(body.by, 'by'), body.decisions));
  });
  app.get('/api/runs/:run/stages/:stage/recent', async (c) => {
    const { run, stage } = c.req.param();
    return c.json(await recentDecisions(session, run, stage, text(c.req.query('by'), 'by')));
  });
  for (const [action, update] of [['approve', approveUpdate], ['reject', rejectUpdate]] as const) {
    app.post(`/api/runs/:run/stages/:stage/${action}`, async (c) => {
      const { run, stage } = c.req.param();
      const body = await jsonBody(c);
      if (!(await runStatus(session, run)).stages[stage]) throw new ReviewRequestError('not-found', `run ${run} has no stage ${stage}`);
      const note = typeof body.note === 'string' && body.note.trim() ? body.note : undefined;
      const rec = await session.client.workflow.getHandle(run).executeUpdate(update, { args: [{ stage, by: text(body.by, 'by'), ...(note ? { note } : {}) }] });
      return c.json({ state: rec.state, approval: rec.approval ?? null });
    });
  }

  // A review's items never change; an image request looks them up once instead of asking Temporal three times.
  const itemsOf = new Map<string, ArtifactRef>();
  const reviewImages = async (run: string, stage: string, fresh: boolean) => {
    const key = `${run}\0${stage}`;
    let ref = fresh ? undefined : itemsOf.get(key);
    if (!ref) {
      ref = (await reviewProgress(session, run, stage)).items;
      itemsOf.set(key, ref);
      if (itemsOf.size > 64) itemsOf.delete(itemsOf.keys().next().value!);
    }
    return (await itemIndex(store, ref)).images;
  };
  app.get('/api/runs/:run/stages/:stage/images/:sha256', async (c) => {
    const { run, stage, sha256 } = c.req.param();
    if (!/^[0-9a-f]{64}$/.test(sha256)) return c.json({ error: 'images are named by their sha256 digest (64 lowercase hex digits)' }, 400);
    // A miss asks again: a retried stage may review other items under the same name.
    const known = (await reviewImages(run, stage, false)).has(sha256) || (await reviewImages(run, stage, true)).has(sha256);
    if (!known || !(await store.has(sha256))) return c.json({ error: `no image ${sha256} in review ${stage}` }, 404);
    const bytes = await fs.readFile(store.pathOf(sha256));
    return c.body(bytes, 200, { 'Content-Type': imageType(bytes.subarray(0, 12)), 'Cache-Control': 'private, max-age=86400, immutable' });
  });
  return app;
}

export async function startReviewServer(opts: ReviewServerOptions): Promise<ReviewServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? (isLoopback(host) ? undefined : randomBytes(18).toString('base64url'));
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    // The app needs the bound port for its Host check; hand it over once listening.
    let bound = 0;
    const app = () => reviewApp({ ...opts, host, port: bound, ...(token ? { token } : {}) });
    let built: Hono | undefined;
    server = serve({ fetch: (req, env) => (built ??= app()).fetch(req, env), hostname: host, port: opts.port ?? 7300 }, (info: AddressInfo) => {
      bound = info.port;
      resolve(info.port);
    });
    server.once('error', reject);
  });
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${shown}:${port}/`;
  return {
    url, openUrl: token ? `${url}?token=${token}` : url, ...(token ? { token } : {}),
    close: () => new Promise<void>((resolve) => { server?.close(() => resolve()); (server as { closeAllConnections?: () => void })?.closeAllConnections?.(); }),
  };
}

class BadRequest extends Error {}

/** An approval the run refused: decided already or ended (409), not an approver (403), else a bad request. */
function refusedUpdate(c: Context, reason: string): Response {
  const status = /not waiting|has ended/.test(reason) ? 409 : /may not decide/.test(reason) ? 403 : 400;
  return c.json({ error: reason }, status);
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const body = await c.req.json().catch(() => { throw new BadRequest('the body is not valid JSON'); });
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('send a JSON object');
  return body as Record<string, unknown>;
}

function text(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v.trim() || v.length > 100) throw new BadRequest(`${field} must be a name (1-100 characters)`);
  return v;
}

function strings(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new BadRequest('release must be a list of item ids');
  return v as string[];
}
