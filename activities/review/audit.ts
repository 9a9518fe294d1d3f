import type { AuditRecord } from '../../workflows/review-messages.js';
import type { Decision } from './items.js';

/**
 * From a review's audit (every decision and undo in arrival order) to one final decision
 * per item: the same rules the review workflow applies, so `twinflow review export`
 * of an open review and the closed stage's outputs agree.
 */

export interface Vote {
  by: string;
  choice: string;
  at: string;
  note?: string;
  /** `by` was typed on a page without sign-in. */
  unauthenticated?: true;
}

/** The live votes of each item after replaying the audit: a later vote by the same person replaces theirs; undo removes it. */
export function replayVotes(records: Iterable<AuditRecord>): Map<string, Vote[]> {
  const votes = new Map<string, Vote[]>();
  for (const r of records) {
    const list = (votes.get(r.id) ?? []).filter((v) => v.by !== r.by);
    if (!r.undo && r.choice !== undefined) {
      list.push({ by: r.by, choice: r.choice, at: r.at, ...(r.note ? { note: r.note } : {}), ...(r.unauthenticated ? { unauthenticated: true as const } : {}) });
    }
    if (list.length) votes.set(r.id, list);
    else votes.delete(r.id);
  }
  return votes;
}

export interface FinalOptions {
  choices: string[];
  quorum: number;
  /** Decides every item short of its quorum (a deadline's accept-/reject-remaining). */
  remaining?: { choice: string; at: string; note: string };
}

export interface FinalTally {
  decisions: Decision[];
  counts: Record<string, number>;
  reviewers: Record<string, number>;
  agreement?: { quorum: number; mean: number; unanimous: number; ties: number };
}

/**
 * Final decisions in queue order. An item with `quorum` votes takes the most common
 * choice; a tie goes to the choice listed first and is flagged. Items without their
 * quorum are left out, unless `remaining` decides them (marked automatic).
 */
export function finalDecisions(ids: Iterable<string>, votes: Map<string, Vote[]>, opts: FinalOptions): FinalTally {
  const decisions: Decision[] = [];
  const counts: Record<string, number> = { items: 0, people: 0, automatic: 0, undecided: 0, ...Object.fromEntries(opts.choices.map((c) => [c, 0])) };
  const reviewers: Record<string, number> = {};
  let agreementSum = 0;
  let unanimous = 0;
  let ties = 0;
  for (const id of ids) {
    counts.items!++;
    const list = votes.get(id) ?? [];
    for (const v of list) reviewers[v.by] = (reviewers[v.by] ?? 0) + 1;
    if (list.length < opts.quorum) {
      if (!opts.remaining) { counts.undecided!++; continue; }
      decisions.push({ id, choice: opts.remaining.choice, by: 'deadline', at: opts.remaining.at, automatic: true, note: opts.remaining.note, ...(list.length ? { votes: list } : {}) });
      counts.automatic!++;
      counts[opts.remaining.choice]!++;
      continue;
    }
    const { choice, share, tie } = plurality(list, opts.choices);
    agreementSum += share;
    if (share === 1) unanimous++;
    if (tie) ties++;
    const last = list.reduce((a, b) => (a.at >= b.at ? a : b));
    const notes = list.filter((v) => v.note).map((v) => (opts.quorum > 1 ? `${v.by}: ${v.note}` : v.note!));
    decisions.push({
      id, choice, by: list.map((v) => v.by).join(', '), at: last.at, automatic: false,
      ...(notes.length ? { note: notes.join(' | ') } : {}),
      ...(list.some((v) => v.unauthenticated) ? { unauthenticated: true as const } : {}),
      ...(opts.quorum > 1 ? { votes: list, agreement: round(share), ...(tie ? { tie: true } : {}) } : {}),
    });
    counts.people!++;
    counts[choice]!++;
  }
  const decidedByPeople = counts.people!;
  const agreement = opts.quorum > 1 && decidedByPeople
    ? { quorum: opts.quorum, mean: round(agreementSum / decidedByPeople), unanimous: round(unanimous / decidedByPeople), ties }
    : undefined;
  return { decisions, counts, reviewers, ...(agreement ? { agreement } : {}) };
}

function plurality(list: Vote[], choices: string[]): { choice: string; share: number; tie: boolean } {
  const tally = new Map<string, number>();
  for (const v of list) tally.set(v.choice, (tally.get(v.choice) ?? 0) + 1);
  const top = Math.max(...tally.values());
  const leaders = choices.filter((c) => tally.get(c) === top);
  return { choice: leaders[0]!, share: top / list.length, tie: leaders.length > 1 };
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;
