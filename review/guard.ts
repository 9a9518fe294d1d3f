import type { MiddlewareHandler } from 'hono';
import type { People } from './people.js';

/**
 * Who may talk to the review server. Local mode (loopback, no tokens): only requests whose
 * Host is the server's own loopback name (a web page elsewhere cannot rebind its domain
 * to 127.0.0.1 and read the queue). With tokens (required off loopback): every API request
 * carries one person's token as `Authorization: Bearer`. Never a cookie: cookies are
 * scoped by host, not port, so two servers on one host would read each other's.
 */

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    // blob: is how the page shows images it fetched with its token.
    c.header('Content-Security-Policy', "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    c.header('Cache-Control', c.res.headers.get('Cache-Control') ?? 'no-store');
  };
}

export function hostGuard(host: string, port: number, people: People): MiddlewareHandler {
  const allowed = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`]);
  return async (c, next) => {
    if (!people.signIn && !allowed.has(c.req.header('host') ?? '')) return c.json({ error: 'unknown Host header; open the page at the address the server printed' }, 403);
    await next();
  };
}

/** The page's files, which carry no data: served without a token so the page can read its own from the link. */
const SHELL = new Set(['/', '/page.js', '/page.css', '/favicon.ico']);

/** Sets `person` from the bearer token; with tokens, refuses every other request without a known one (401). */
export function signIn(people: People): MiddlewareHandler<{ Variables: { person?: string } }> {
  return async (c, next) => {
    if (!people.signIn || (c.req.method === 'GET' && SHELL.has(c.req.path))) return next();
    const person = people.who(c.req.header('authorization')?.match(/^Bearer (\S+)$/)?.[1]);
    if (!person) return c.json({ error: 'missing or unknown token: open the review page with your own link (the one `twinflow review` printed for you)' }, 401);
    c.set('person', person);
    return next();
  };
}

/** Refuses POST bodies that are not JSON before they are read. */
export function jsonOnly(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'POST' && !(c.req.header('content-type') ?? '').startsWith('application/json')) {
      return c.json({ error: 'send JSON (Content-Type: application/json)' }, 415);
    }
    await next();
  };
}

/**
 * Refuses POSTs a browser sent from another site. JSON bodies already need a CORS
 * preflight this server never grants; this is the second lock.
 */
export function sameOrigin(): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header('origin');
    // An opaque origin ("null") has no host and is refused too.
    if (c.req.method === 'POST' && origin && hostOf(origin) !== c.req.header('host')) {
      return c.json({ error: `requests from ${origin} are refused; use the page this server serves` }, 403);
    }
    await next();
  };
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
