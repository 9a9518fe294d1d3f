import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve, type ServerType } from '@hono/node-server';
import { ApplicationFailure, WorkflowUpdateFailedError } from '@temporalio/client';
import type { ArtifactStore } from '../activities/artifact-store.js';
import type { StageLogs } from '../activities/stage-log.js';
import type { Session } from '../cli/client.js';
import type { ArtifactRef } from '../engine/types.js';
import { approveUpdate, rejectUpdate, REFUSED, type DecisionArgs } from '../workflows/messages.js';
import { stripControls, type ReviewDecisionInput } from '../workflows/review-messages.js';
import {
  claimItems, decideItems, listWaiting, openReviewHandle, recentDecisions, reviewProgress, ReviewRequestError, runStatus,
} from './queue-client.js';
import { hostGuard, isLoopback, jsonOnly, sameOrigin, securityHeaders, signIn } from './guard.js';
import { imageType, itemIndex } from './item-index.js';
import { pageAssets } from './assets.js';
import { People, PeopleError, personName, type Person } from './people.js';

export interface ReviewServerOptions {
  session: Session;
  store: ArtifactStore;
  /** Stage logs: with a shared store, any stage's log from any host. @default none: the page shows no logs */
  logs?: StageLogs;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 7300 */
  port?: number;
  /**
   * Everyone who may use the page, each with their own token; the API takes their name
   * from it. Empty on loopback: local mode, where the page asks for a name. Off loopback
   * without any, one token is generated for `defaultUser`.
   */
  people?: Person[];
  /** Local mode: the name the page suggests. Off loopback without `people`: whose generated token it is. */
  defaultUser: string;
}

export interface ReviewServer {
  url: string;
  /** One link per person, carrying their token (none in local mode). */
  links: Array<{ name: string; url: string }>;
  /** The link to open: the only person's, else `url`. */
  openUrl: string;
  close(): Promise<void>;
}

type Env = { Variables: { person?: string } };

const MAX_BODY = 1024 * 1024;
const STATUS = { 'not-found': 404, invalid: 400, forbidden: 403, closed: 409 } as const;

/** Thrown for a request the server refuses itself, with the HTTP status to answer. */
class HttpError extends Error {
  constructor(readonly status: 400 | 403, message: string) {
    super(message);
  }
}

/**
 * The review page and its JSON API. A Temporal client only: decisions go to the review
 * workflow as updates, images come from the artifact store by digest.
 */
export function reviewApp(opts: Required<Pick<ReviewServerOptions, 'host' | 'port'>> & Omit<ReviewServerOptions, 'people'> & { people: People }): Hono<Env> {
  const { session, store } = opts;
  const app = new Hono<Env>();
  app.use('*', securityHeaders(), hostGuard(opts.host, opts.port, opts.people), signIn(opts.people), sameOrigin(), jsonOnly());
  app.use('/api/*', bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.json({ error: `request body over ${MAX_BODY} bytes; send decisions in smaller batches` }, 413) }));
  app.onError((err, c) => {
    if (err instanceof ReviewRequestError) return c.json({ error: err.message }, STATUS[err.kind]);
    if (err instanceof WorkflowUpdateFailedError) return refusedUpdate(c, err);
    if (err instanceof HttpError) return c.json({ error: err.message }, err.status);
    if (err instanceof PeopleError) return c.json({ error: err.message }, 400);
    console.error(`review server: ${(err as Error).stack ?? err}`);
    return c.json({ error: 'internal error; see the server output' }, 500);
  });

  app.get('/', async (c) => c.html((await pageAssets()).html));
  app.get('/page.js', async (c) => c.body((await pageAssets()).js, 200, { 'Content-Type': 'text/javascript; charset=utf-8' }));
  app.get('/page.css', async (c) => c.body((await pageAssets()).css, 200, { 'Content-Type': 'text/css; charset=utf-8' }));

  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/api/me', (c) => c.json({ user: c.get('person') ?? opts.defaultUser, signedIn: c.get('person') !== undefined }));
  app.get('/api/waiting', async (c) => c.json({ waiting: await listWaiting(session) }));
  app.get('/api/runs/:run/stages/:stage', async (c) => {
    const { run, stage } = c.req.param();
    const status = await runStatus(session, run);
    const rec = status.stages[stage];
    if (!rec) throw new ReviewRequestError('not-found', `run ${run} has no stage ${stage}`);
    if (rec.uses === 'core/approval') {
      return c.json({ kind: 'approval', state: rec.state, message: rec.message ?? null, approvers: rec.approvers ?? [], approval: rec.approval ?? null, needs: rec.needs });
    }
    return c.json({ kind: 'review', progress: await reviewProgress(session, run, stage) });
  });

  decisionRoutes(app, session, store);
  approvalRoutes(app, session);
  imageRoutes(app, session, store);
  logRoutes(app, session, opts.logs);
  return app;
}

export async function startReviewServer(opts: ReviewServerOptions): Promise<ReviewServer> {
  const host = opts.host ?? '127.0.0.1';
  const list = opts.people?.length ? opts.people : isLoopback(host) ? [] : [{ name: opts.defaultUser, token: randomBytes(18).toString('base64url') }];
  const people = new People(list);
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    // The app needs the bound port for its Host check; hand it over once listening.
    let bound = 0;
    const app = () => reviewApp({ ...opts, host, port: bound, people });
    let built: Hono<Env> | undefined;
    server = serve({ fetch: (req, env) => (built ??= app()).fetch(req, env), hostname: host, port: opts.port ?? 7300 }, (info: AddressInfo) => {
      bound = info.port;
      resolve(info.port);
    });
    server.once('error', reject);
  });
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${shown}:${port}/`;
  const links = list.map((p) => ({ name: p.name, url: `${url}?token=${encodeURIComponent(p.token)}` }));
  return {
    url, links, openUrl: links.length === 1 ? links[0]!.url : url,
    close: () => new Promise<void>((resolve) => { server?.close(() => resolve()); (server as { closeAllConnections?: () => void })?.closeAllConnections?.(); }),
  };
}

/** Claims, releases and decisions on a review's items, as the person the token names (or the name typed, in local mode). */
function decisionRoutes(app: Hono<Env>, session: Session, store: ArtifactStore): void {
  app.post('/api/runs/:run/stages/:stage/claim', async (c) => {
    const { run, stage } = c.req.param();
    const body = await jsonBody(c);
    const { by } = decider(c, body.by);
    const claimed = await claimItems(session, run, stage, by, Number(body.count ?? 10), ids(body.release, 'release'));
    const { items } = await itemIndex(store, claimed.progress.items);
    return c.json({ ...claimed, items: claimed.ids.map((id) => items.get(id)).filter(Boolean) });
  });
  // What a page that closes sends (fetch keepalive): its items go back to everyone at once, not when the lease lapses.
  app.post('/api/runs/:run/stages/:stage/release', async (c) => {
    const { run, stage } = c.req.param();
    const body = await jsonBody(c);
    const release = ids(body.ids, 'ids');
    if (!release?.length) throw new HttpError(400, 'send {"ids": [ITEM, ...]}: the items to hand back');
    const { progress } = await claimItems(session, run, stage, decider(c, body.by).by, 0, release);
    return c.json({ released: release.length, progress });
  });
  app.post('/api/runs/:run/stages/:stage/decisions', async (c) => {
    const { run, stage } = c.req.param();
    const body = await jsonBody(c);
    if (!Array.isArray(body.decisions)) throw new HttpError(400, 'send {"decisions": [{"id", "choice"} or {"id", "undo": true}]}');
    const { by, unauthenticated } = decider(c, body.by);
    return c.json(await decideItems(session, run, stage, by, body.decisions.map(plainNote), { unauthenticated }));
  });
  app.get('/api/runs/:run/stages/:stage/recent', async (c) => {
    const { run, stage } = c.req.param();
    return c.json(await recentDecisions(session, run, stage, decider(c, c.req.query('by')).by));
  });
}

/** Approve and reject, as the person the token names (or the name typed, in local mode). */
function approvalRoutes(app: Hono<Env>, session: Session): void {
  for (const [action, update] of [['approve', approveUpdate], ['reject', rejectUpdate]] as const) {
    app.post(`/api/runs/:run/stages/:stage/${action}`, async (c) => {
      const { run, stage } = c.req.param();
      const body = await jsonBody(c);
      if (!(await runStatus(session, run)).stages[stage]) throw new ReviewRequestError('not-found', `run ${run} has no stage ${stage}`);
      const note = typeof body.note === 'string' && body.note.trim() ? stripControls(body.note, 'lines') : undefined;
      const who = decider(c, body.by);
      const args: DecisionArgs = { stage, by: who.by, ...(note ? { note } : {}), ...(who.unauthenticated ? { unauthenticated: true } : {}) };
      const rec = await session.client.workflow.getHandle(run).executeUpdate(update, { args: [args] });
      return c.json({ state: rec.state, approval: rec.approval ?? null });
    });
  }
}

/** Item images by digest, only those of the review's own items, only while it is open. */
/** Most of a log the page is sent: its end, where a failure is. */
const MAX_LOG_CHARS = 256 * 1024;

function logRoutes(app: Hono<Env>, session: Session, logs: StageLogs | undefined): void {
  app.get('/api/runs/:run/stages/:stage/log', async (c) => {
    const { run, stage } = c.req.param();
    const status = await runStatus(session, run);
    if (!status.stages[stage]) throw new ReviewRequestError('not-found', `run ${run} has no stage ${stage}`);
    const text = logs ? await logs.read(run, stage) : undefined;
    if (text === undefined) return c.json({ log: null, truncated: false });
    const truncated = text.length > MAX_LOG_CHARS;
    return c.json({ log: stripControls(truncated ? text.slice(-MAX_LOG_CHARS) : text, 'lines'), truncated });
  });
}

function imageRoutes(app: Hono<Env>, session: Session, store: ArtifactStore): void {
  // A review's items never change: an image request reads them once, and only asks Temporal whether the review is open.
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
    // The same check as every API call: nothing of a review is served once it closed or its run ended (409).
    await openReviewHandle(session, run, stage);
    // A miss asks again: a retried stage may review other items under the same name.
    const known = (await reviewImages(run, stage, false)).has(sha256) || (await reviewImages(run, stage, true)).has(sha256);
    if (!known || !(await store.has(sha256))) return c.json({ error: `no image ${sha256} in review ${stage}` }, 404);
    const bytes = await fs.readFile((await store.file(sha256)));
    return c.body(bytes, 200, { 'Content-Type': imageType(bytes.subarray(0, 12)), 'Cache-Control': 'private, max-age=86400, immutable' });
  });
}

const REFUSAL_STATUS: Record<string, 409 | 403 | 404 | 400> = {
  [REFUSED.notNow]: 409, [REFUSED.notAllowed]: 403, [REFUSED.unknown]: 404, [REFUSED.invalid]: 400,
};

/** A decision the run refused, answered by its failure type: decided already or ended (409), not an approver (403), ... */
function refusedUpdate(c: Context, err: WorkflowUpdateFailedError): Response {
  const cause = err.cause;
  const status = cause instanceof ApplicationFailure ? REFUSAL_STATUS[cause.type ?? ''] ?? 400 : 400;
  return c.json({ error: cause?.message ?? err.message }, status);
}

/**
 * Who sends a request. Signed in: the person their token names; a `by` naming someone
 * else is refused. Local mode: the name the page sends, as plain text, marked unauthenticated.
 */
function decider(c: Context<Env>, given: unknown): { by: string; unauthenticated?: true } {
  const person = c.get('person');
  if (person === undefined) return { by: personName(given, '"by"'), unauthenticated: true };
  if (given !== undefined && given !== person) throw new HttpError(403, `you are signed in as ${person} and cannot act as ${JSON.stringify(given)}; leave "by" out`);
  return { by: person };
}

/** A decision's note as plain text (newlines and tabs kept); anything else goes to the review's own checks. */
function plainNote(d: unknown): ReviewDecisionInput {
  const note = (d as ReviewDecisionInput | null)?.note;
  return (typeof note === 'string' ? { ...(d as ReviewDecisionInput), note: stripControls(note, 'lines') } : d) as ReviewDecisionInput;
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const body = await c.req.json().catch(() => { throw new HttpError(400, 'the body is not valid JSON'); });
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'send a JSON object');
  return body as Record<string, unknown>;
}

function ids(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new HttpError(400, `${field} must be a list of item ids`);
  return v as string[];
}
