/// <reference lib="dom" />
/** The server's JSON API; errors carry the server's message. */

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new ApiError(res.status, (data as { error?: string }).error ?? res.statusText);
  return data as T;
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
