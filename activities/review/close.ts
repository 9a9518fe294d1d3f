import fs from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { ArtifactRef } from '../../engine/types.js';
import type { AuditRecord, ReviewConfig } from '../../workflows/review-messages.js';
import { encodeHashes } from '../../workflows/review-ids.js';
import type { ArtifactStore } from '../artifact-store.js';
import { readJsonl } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';
import { finalDecisions, replayVotes } from './audit.js';
import { writeReviewOutputs } from './outputs.js';
import { REVIEW_AUDIT_MEDIA_TYPE } from './items.js';
import { invalidInput } from '../failures.js';

/** What the review workflow hands over when its queue is done. */
export interface CloseReviewInput extends StageActivityInput {
  review: {
    items: ArtifactRef;
    queue: ArtifactRef;
    config: ReviewConfig;
    segments: ArtifactRef[];
    outcome: 'complete' | 'deadline';
    /** The deadline decides the items still short of their quorum. */
    remaining?: 'accept' | 'reject';
  };
}

/** The ids of a queue artifact, in order. */
export async function readQueueIds(store: ArtifactStore, queue: ArtifactRef): Promise<string[]> {
  const text = await fs.readFile((await store.file(queue)), 'utf8');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as string);
}

/** Every audit record of a review, segment after segment. */
export async function* readAudit(store: ArtifactStore, segments: ArtifactRef[]): AsyncGenerator<AuditRecord> {
  for (const segment of segments) {
    for await (const { value } of readJsonl<AuditRecord>((await store.file(segment)))) yield value;
  }
}

async function collect<T>(rows: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const row of rows) all.push(row);
  return all;
}

export function createReviewActivities(deps: { store: ArtifactStore; home: HomeLayout }) {
  const { store } = deps;
  return {
    /**
     * The queue's ids from `offset`, at most `limit`, as 9-character hashes: what the review
     * workflow checks item ids against. Pages keep each result below Temporal's 512 KB payload warning.
     */
    async loadReviewIndex(input: { queue: ArtifactRef; total: number; offset: number; limit: number }): Promise<{ hashes: string }> {
      const ids = await readQueueIds(store, input.queue);
      if (ids.length !== input.total) {
        throw invalidInput(`review queue holds ${ids.length} ids, expected ${input.total}`);
      }
      return { hashes: encodeHashes(ids.slice(input.offset, input.offset + input.limit)) };
    },

    /** One more audit segment in the store. */
    async appendReviewAudit(input: { runId: string; stageId: string; records: AuditRecord[] }): Promise<ArtifactRef> {
      const text = input.records.map((r) => JSON.stringify(r)).join('\n') + '\n';
      const ref = await store.putBytes(text, REVIEW_AUDIT_MEDIA_TYPE);
      return { ...ref, counts: { rows: input.records.length } };
    },

    /** The review's outputs: one final decision per item (quorum, ties, deadline), and the whole audit. */
    async closeReview(input: CloseReviewInput): Promise<StageActivityResult> {
      const { review } = input;
      const ids = await readQueueIds(store, review.queue);
      const votes = replayVotes(await collect(readAudit(store, review.segments)));
      const at = new Date().toISOString();
      const remaining = review.remaining
        ? { choice: review.remaining, at, note: `the deadline passed (${review.config.deadlineAt}); onDeadline: ${review.remaining}-remaining` }
        : undefined;
      const tally = finalDecisions(ids, votes, { choices: review.config.choices, quorum: review.config.quorum, ...(remaining ? { remaining } : {}) });
      const outputs = await writeReviewOutputs(store, deps.home.stageDir(input.runId, input.stageId), {
        ...tally, audit: readAudit(store, review.segments), outcome: review.outcome,
      });
      return { outputs, attempt: Context.current().info.attempt };
    },
  };
}
