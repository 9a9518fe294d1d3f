/// <reference lib="dom" />
/**
 * The server's JSON API; errors carry the server's message. A person's token arrives
 * once in the link (`?token=`) and goes out only as `Authorization: Bearer`. It is kept
 * in this tab's sessionStorage (so two people's links open in two tabs stay two people)
 * and in localStorage for tabs opened later without the link; both belong to this
 * server's origin, port included, unlike a cookie.
 */

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const TOKEN_KEY = 'twinflow.review.token';

/** Takes the token out of the address bar (and so out of history and bookmarks), else keeps the last link's. */
export function adoptToken(): void {
  const url = new URL(location.href);
  const token = url.searchParams.get('token') ?? sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
  if (token === null) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  if (!url.searchParams.has('token')) return;
  localStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

function authorized(headers: Record<string, string> = {}): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

/** A token the server does not know (another server's, or from before a restart) is of no use kept. */
function forget(): void {
  const token = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  if (token !== null && localStorage.getItem(TOKEN_KEY) === token) localStorage.removeItem(TOKEN_KEY);
}

export async function api<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = body === undefined
    ? { headers: authorized() }
    : { method: 'POST', headers: authorized({ 'Content-Type': 'application/json' }), body: JSON.stringify(body) };
  const res = await fetch(path, init);
  if (res.status === 401) forget();
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new ApiError(res.status, (data as { error?: string }).error ?? res.statusText);
  return data as T;
}

/** A POST that outlives the page (pagehide): the browser sends it after the tab is gone. */
export function sendOnLeave(path: string, body: unknown): void {
  void fetch(path, { method: 'POST', keepalive: true, headers: authorized({ 'Content-Type': 'application/json' }), body: JSON.stringify(body) }).catch(() => undefined);
}

const images = new Map<string, Promise<string>>();
const KEEP_IMAGES = 96;

/**
 * An image as a blob: URL: an <img src> cannot carry the token. The last few stay, so
 * moving back and forth does not fetch them again; older ones are freed.
 */
export function imageUrl(path: string): Promise<string> {
  let url = images.get(path);
  // Most recently asked for last: what is on screen is never the one freed.
  if (url) images.delete(path);
  else {
    url = fetch(path, { headers: authorized() }).then(async (res) => {
      if (!res.ok) throw new ApiError(res.status, ((await res.json().catch(() => ({}))) as { error?: string }).error ?? res.statusText);
      return URL.createObjectURL(await res.blob());
    });
    url.catch(() => images.delete(path));
  }
  images.set(path, url);
  if (images.size > KEEP_IMAGES) {
    const [oldest, freed] = images.entries().next().value!;
    images.delete(oldest);
    void freed.then((u) => URL.revokeObjectURL(u), () => undefined);
  }
  return url;
}

export const stagePath = (run: string, stage: string) => `/api/runs/${encodeURIComponent(run)}/stages/${encodeURIComponent(stage)}`;

export interface Progress {
  state: string;
  total: number;
  decided: number;
  quorum: number;
  choices: string[];
  byReviewer: Record<string, number>;
  title?: string;
  question?: string;
  overdue: boolean;
  deadlineAt?: string;
}

/** Items as the server sends them (never a host path). */
export type { PageItem } from '../item-index.js';

export interface Waiting {
  runId: string;
  pipeline: string;
  stage: string;
  kind: 'review' | 'approval';
  message?: string;
  review?: { total: number; title?: string };
}
