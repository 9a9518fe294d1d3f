import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/**
 * Who may talk to the review server. On loopback without a token: only requests whose
 * Host is the server's own loopback name (a web page elsewhere cannot rebind its domain
 * to 127.0.0.1 and read the queue). With a token (required off loopback): every request
 * carries it as `Authorization: Bearer`, or the cookie set when the page was opened
 * with `?token=`.
 */

export const TOKEN_COOKIE = 'twinflow_review';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header('Content-Security-Policy', "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    c.header('Cache-Control', c.res.headers.get('Cache-Control') ?? 'no-store');
  };
}

export function hostGuard(host: string, port: number, token: string | undefined): MiddlewareHandler {
  const allowed = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`]);
  return async (c, next) => {
    if (!token && !allowed.has(c.req.header('host') ?? '')) return c.json({ error: 'unknown Host header; open the page at the address the server printed' }, 403);
    await next();
  };
}

export function tokenGuard(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!token) return next();
    const bearer = c.req.header('authorization')?.match(/^Bearer (.+)$/)?.[1];
    if (sameToken(bearer, token) || sameToken(getCookie(c, TOKEN_COOKIE), token)) return next();
    const query = c.req.query('token');
    if (c.req.method === 'GET' && c.req.path === '/' && sameToken(query, token)) {
      setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/' });
      return c.redirect('/', 303);
    }
    return c.json({ error: 'missing or wrong token: open the URL with ?token= that `twinflow review serve` printed' }, 401);
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
