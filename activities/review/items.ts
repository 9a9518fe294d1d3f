/**
 * The formats people-in-the-loop stages exchange. A stage that needs human judgement
 * (dedupe candidates, hard-negative shortlists, generated-image validation) writes an
 * items artifact; a deciding stage (`core/review`, or `core/decide`) writes a
 * decisions artifact with one row per decided item; the consuming stage reads both.
 */

export const REVIEW_ITEMS_MEDIA_TYPE = 'application/x-twinflow-review-items+jsonl';
export const DECISIONS_MEDIA_TYPE = 'application/x-twinflow-decisions+jsonl';

/** One image shown to a reviewer: a prepared image, named by its digest in the artifact store, and whose it is. */
export interface ReviewImage {
  sha256: string;
  /** The instance the image belongs to. */
  instance_id: string;
  role?: 'listing' | 'review' | 'generated';
}

/** One line of an items artifact. */
export interface ReviewItem {
  /** Unique within the artifact and stable for the same inputs (decisions refer to it). */
  id: string;
  /**
   * Items that compete: e.g. all shortlist candidates of one anchor instance. Policies
   * such as "accept the top candidate" rank within a group.
   */
  group?: string;
  /** Higher is more likely to be accepted (e.g. a cosine similarity). */
  score?: number;
  /** Two or more images; the first is the reference. */
  images: ReviewImage[];
  question?: string;
  /** Anything a reviewer should see: titles, categories, ids (untrusted text). */
  metadata?: Record<string, unknown>;
}

/** One line of a decisions artifact. */
export interface Decision {
  id: string;
  /** `accept`/`reject` by default; free labels when the review defines its own choices. */
  choice: string;
  /** Who decided: a person, or `policy:<name>` for an automatic decision. */
  by: string;
  at: string;
  /** True for decisions made by a policy rather than a person. */
  automatic: boolean;
  note?: string;
  /** Someone who decided it typed their name on a page without sign-in: nothing checked who they were. */
  unauthenticated?: true;
  /** With a quorum above 1: every vote, and the share that chose `choice`. */
  votes?: Array<{ by: string; choice: string; at: string; note?: string; unauthenticated?: true }>;
  agreement?: number;
  /** The votes tied; `choice` is the tied choice listed first. */
  tie?: boolean;
}

export const REVIEW_AUDIT_MEDIA_TYPE = 'application/x-twinflow-review-audit+jsonl';
export const REVIEW_QUEUE_MEDIA_TYPE = 'application/x-twinflow-review-queue+jsonl';
