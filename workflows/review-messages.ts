import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ArtifactRef } from '../engine/types.js';

/**
 * The review workflow's messages: what the review page, `twinflow review ...` and the
 * interpreter exchange with the queue of one `core/review` stage. Items themselves live
 * in the artifact store; every message names items by id and carries no images.
 */

/** What happens when a review's deadline passes with items still undecided. */
export type DeadlineAction = 'fail' | 'accept-remaining' | 'reject-remaining' | 'keep-waiting';

/** A review's options after validation (the `openReview` activity normalizes `with`). */
export interface ReviewConfig {
  /** What a reviewer may answer, in the order the page shows them (digit keys follow it). */
  choices: string[];
  /** Decisions each item needs from different people. @default 1 */
  quorum: number;
  /** When the deadline passes (ISO time); absent: no deadline. */
  deadlineAt?: string;
  /** @default 'fail' */
  onDeadline: DeadlineAction;
  /** Who may decide; anyone when empty. */
  assignees: string[];
  /** Shown above the items. */
  title?: string;
  /** What the reviewer answers; an item's own `question` takes precedence. */
  question?: string;
  /** Minutes an item claimed by one reviewer is held back from others. @default 10 */
  leaseMinutes: number;
}

/** One decision a reviewer sends: a choice, or `undo` of their own earlier decision on the item. */
export interface ReviewDecisionInput {
  id: string;
  choice?: string;
  undo?: boolean;
  note?: string;
}

export interface ReviewDecideArgs {
  /** The run the reviewer thinks they are deciding for; a mismatch is refused. */
  runId: string;
  stage: string;
  /** Plain text: a name with control characters is refused. */
  by: string;
  /** `by` was typed on a review page nobody signed in to (local mode); the audit says so. @default false */
  unauthenticated?: boolean;
  /** At most MAX_DECISIONS_PER_UPDATE; the whole batch is refused when one entry is invalid. */
  decisions: ReviewDecisionInput[];
}

export interface ReviewDecideResult {
  /** New or changed decisions. */
  applied: number;
  /** The same decision by the same person again: applied once, counted here. */
  duplicates: number;
  undone: number;
  /** Valid but not applied (the item already has its quorum from others, ...), with why. */
  skipped: Array<{ id: string; reason: string }>;
  progress: ReviewProgress;
}

export interface ReviewClaimArgs {
  runId: string;
  stage: string;
  by: string;
  /** How many items to hand out (1-200); 0 only hands `release` back. */
  count: number;
  /** Items this reviewer no longer holds (e.g. the page closed). */
  release?: string[];
}

export interface ReviewClaimResult {
  /**
   * Items to show, as positions in the queue artifact (`ReviewProgress.queue`, one id per
   * line), in order: undecided, not held by someone else, not yet decided by `by`.
   * `review/queue-client.ts` turns them into ids.
   */
  positions: number[];
  /** When the hold on these items lapses (ISO time). */
  leaseUntil: string;
  /** Why fewer items came back than were asked for while others were free (the hold cap). */
  limited?: string;
  progress: ReviewProgress;
}

export type ReviewState = 'opening' | 'open' | 'closing' | 'closed' | 'expired';

export interface ReviewProgress {
  runId: string;
  stage: string;
  state: ReviewState;
  total: number;
  /** Items with all the decisions they need. */
  decided: number;
  /** Decisions recorded (equals `decided` when quorum is 1). */
  votes: number;
  quorum: number;
  choices: string[];
  byReviewer: Record<string, number>;
  byChoice: Record<string, number>;
  deadlineAt?: string;
  onDeadline: DeadlineAction;
  /** The deadline passed and the review keeps waiting. */
  overdue: boolean;
  assignees: string[];
  title?: string;
  question?: string;
  /** The items artifact (JSONL of review items) the page reads the items from. */
  items: ArtifactRef;
  /** The queue artifact: the item ids in queue order, one JSON string per line. */
  queue: ArtifactRef;
  /** Continue-as-new generations so far. */
  generation: number;
}

/** A reviewer's own latest decisions, newest last: the page's undo stack after a reload. */
export interface ReviewRecent {
  /** Positions in the queue artifact, as in ReviewClaimResult. */
  decisions: Array<{ position: number; choice: string }>;
}

/** One line of a review's audit: every decision and undo, as it arrived. */
export interface AuditRecord {
  /** Order of arrival within the review, from 1. */
  seq: number;
  at: string;
  by: string;
  id: string;
  choice?: string;
  undo?: true;
  note?: string;
  /** Made by a rule (a policy, a deadline action), not a person. */
  automatic?: true;
  /** `by` is a name typed on a page without sign-in (local mode): nothing checked who it was. */
  unauthenticated?: true;
}

/** Where a review's audit is: flushed segments in the store, then records not yet flushed. */
export interface ReviewAuditSnapshot {
  segments: ArtifactRef[];
  pending: AuditRecord[];
}

/** Largest batch one update may carry (keeps each update's payload far below 2 MB). */
export const MAX_DECISIONS_PER_UPDATE = 1000;

/**
 * Most items one person holds at once: a page or script that claims and walks away
 * cannot take a whole queue from everyone else until the leases lapse.
 */
export const MAX_HELD_PER_REVIEWER = 50;

// C0 controls, DEL and C1 controls: what a terminal acts on (ESC starts a sequence, BEL
// rings, CR rewrites the line). Names and notes reach terminals through `twinflow status`.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROLS_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` without control characters; `lines` keeps newlines and tabs (a CR or CRLF becomes a newline). */
export function stripControls(text: string, keep: 'nothing' | 'lines' = 'nothing'): string {
  return keep === 'lines' ? text.replace(/\r\n?/g, '\n').replace(CONTROLS_BUT_LINES, '') : text.replace(CONTROLS, '');
}

export function hasControls(text: string): boolean {
  return stripControls(text) !== text;
}

/** The review workflow of a stage: one per (run, stage), reused by a retry after its deadline. */
export function reviewWorkflowId(runId: string, stageId: string): string {
  return `${runId}/review/${stageId}`;
}

export const reviewDecideUpdate = defineUpdate<ReviewDecideResult, [ReviewDecideArgs]>('reviewDecide');
export const reviewClaimUpdate = defineUpdate<ReviewClaimResult, [ReviewClaimArgs]>('reviewClaim');
export const reviewProgressQuery = defineQuery<ReviewProgress>('reviewProgress');
export const reviewRecentQuery = defineQuery<ReviewRecent, [string]>('reviewRecent');
export const reviewAuditQuery = defineQuery<ReviewAuditSnapshot>('reviewAudit');
