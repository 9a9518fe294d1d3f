import path from 'node:path';
import type { JsonObject } from '../../engine/types.js';
import type { AuditRecord } from '../../workflows/review-messages.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import { DECISIONS_MEDIA_TYPE, REVIEW_AUDIT_MEDIA_TYPE, type Decision } from './items.js';

export interface ReviewOutcome {
  decisions: Iterable<Decision>;
  audit: Iterable<AuditRecord> | AsyncIterable<AuditRecord>;
  outcome: 'complete' | 'deadline' | 'policy';
  policy?: string;
  counts: Record<string, number>;
  reviewers: Record<string, number>;
  agreement?: { quorum: number; mean: number; unanimous: number; ties: number };
}

/** Writes a review's decisions and audit into the stage folder and the store; returns the stage outputs. */
export async function writeReviewOutputs(store: ArtifactStore, dir: string, o: ReviewOutcome): Promise<JsonObject> {
  const decisions = await writeAll(path.join(dir, 'decisions.jsonl'), o.decisions);
  const audit = await writeAll(path.join(dir, 'audit.jsonl'), o.audit);
  const decisionsRef = await store.putFile(decisions.file, DECISIONS_MEDIA_TYPE);
  const auditRef = await store.putFile(audit.file, REVIEW_AUDIT_MEDIA_TYPE);
  return {
    decisions: { ...decisionsRef, counts: { rows: decisions.rows } },
    audit: { ...auditRef, counts: { rows: audit.rows } },
    outcome: o.outcome,
    ...(o.policy ? { policy: o.policy } : {}),
    counts: o.counts,
    reviewers: o.reviewers,
    ...(o.agreement ? { agreement: o.agreement } : {}),
  } as unknown as JsonObject;
}

async function writeAll(file: string, rows: Iterable<unknown> | AsyncIterable<unknown>): Promise<JsonlWriter> {
  const out = await JsonlWriter.open(file);
  for await (const row of rows) await out.write(row);
  await out.close();
  return out;
}
