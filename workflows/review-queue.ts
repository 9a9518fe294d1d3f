import { ApplicationFailure } from '@temporalio/workflow';
import { REFUSED } from './messages.js';
import {
  hasControls,
  MAX_DECISIONS_PER_UPDATE,
  MAX_HELD_PER_REVIEWER,
  stripControls,
  type AuditRecord,
  type ReviewConfig,
  type ReviewDecideArgs,
  type ReviewDecideResult,
} from './review-messages.js';

/**
 * The state of one review queue, compact enough to carry 100,000 items across
 * continue-as-new: a vote is a choice index and a reviewer index in flat typed arrays
 * (`quorum` slots per item), items are known by a 53-bit hash of their id, and notes and
 * times live only in the audit (the artifact store). Pure code: the workflow and unit
 * tests drive it.
 */

const EMPTY = 0xff;
const RECENT_PER_REVIEWER = 50;
const MAX_REVIEWERS = 50_000;

/** What continue-as-new carries: votes as text (2 chars a slot), reviewers, recent decisions, live leases. */
export interface QueueSnapshot {
  votes: string;
  reviewers: string[];
  recent: number[][];
  leases: Array<[item: number, reviewer: number, untilMs: number]>;
  seq: number;
}

export class ReviewQueue {
  readonly total: number;
  private readonly choice: Uint8Array;
  private readonly who: Uint16Array;
  private readonly count: Uint8Array;
  private readonly reviewers: string[] = [];
  private readonly reviewerIndex = new Map<string, number>();
  private readonly recent: number[][] = [];
  private readonly leases = new Map<number, Array<{ r: number; until: number }>>();
  private votesByReviewer: number[] = [];
  private votesByChoice: number[];
  private cursor = 0;
  decided = 0;
  votes = 0;
  seq = 0;

  constructor(private readonly ids: IdIndex, private readonly config: ReviewConfig, snapshot?: QueueSnapshot) {
    this.total = ids.size;
    const slots = this.total * config.quorum;
    this.choice = new Uint8Array(slots).fill(EMPTY);
    this.who = new Uint16Array(slots);
    this.count = new Uint8Array(this.total);
    this.votesByChoice = config.choices.map(() => 0);
    if (snapshot) this.restore(snapshot);
  }

  /** Throws, with every reason a person needs, when any decision of the batch is invalid. */
  check(args: ReviewDecideArgs): void {
    this.checkReviewer(args.by);
    if (!Array.isArray(args.decisions) || args.decisions.length === 0) throw new Error('send at least one decision');
    if (args.decisions.length > MAX_DECISIONS_PER_UPDATE) {
      throw new Error(`${args.decisions.length} decisions in one batch; send at most ${MAX_DECISIONS_PER_UPDATE} at a time`);
    }
    const problems: string[] = [];
    for (const [n, d] of args.decisions.entries()) {
      const where = `decision ${n + 1}${typeof d?.id === 'string' ? ` (item ${d.id})` : ''}`;
      if (typeof d?.id !== 'string' || this.ids.indexOf(d.id) === undefined) problems.push(`${where}: unknown item`);
      else if (d.undo === true ? d.choice !== undefined : typeof d.choice !== 'string') problems.push(`${where}: give either a choice or undo: true`);
      else if (d.choice !== undefined && !this.config.choices.includes(d.choice)) {
        problems.push(`${where}: "${String(d.choice).slice(0, 40)}" is not a choice; choices: ${this.config.choices.join(', ')}`);
      } else if (d.note !== undefined && (typeof d.note !== 'string' || d.note.length > 2000)) problems.push(`${where}: a note is text of at most 2000 characters`);
      if (problems.length >= 5) break;
    }
    if (problems.length) throw new Error(problems.join('; '));
  }

  checkReviewer(by: string): void {
    if (typeof by !== 'string' || !by.trim() || by.length > 100) throw new Error('a decision needs the reviewer\'s name in `by` (at most 100 characters)');
    // Refused, not cleaned: a validator cannot change what the update records.
    if (hasControls(by)) throw new Error(`the reviewer name ${JSON.stringify(by)} holds control characters; send the name as plain text`);
    const { assignees } = this.config;
    if (assignees.length && !assignees.includes(by)) {
      // Typed, so the review page answers 403 without reading the message.
      throw ApplicationFailure.create({ type: REFUSED.notAllowed, nonRetryable: true, message: `${by} may not decide this review; assignees: ${assignees.join(', ')}` });
    }
    if (!this.reviewerIndex.has(by) && this.reviewers.length >= MAX_REVIEWERS) throw new Error('this review has too many reviewers');
  }

  /** Applies a checked batch in order; returns the result and the audit records it made. */
  apply(args: ReviewDecideArgs, at: string): { result: Omit<ReviewDecideResult, 'progress'>; records: AuditRecord[] } {
    const r = this.reviewer(args.by);
    const result = { applied: 0, duplicates: 0, undone: 0, skipped: [] as Array<{ id: string; reason: string }> };
    const records: AuditRecord[] = [];
    for (const d of args.decisions) {
      const item = this.ids.indexOf(d.id)!;
      this.dropLease(item, r);
      const mine = this.slotOf(item, r);
      if (d.undo) {
        if (mine < 0) { result.duplicates++; continue; }
        this.removeVote(item, mine);
        result.undone++;
        this.recent[r] = this.recent[r]!.filter((i) => i !== item);
      } else {
        const c = this.config.choices.indexOf(d.choice!);
        if (mine >= 0 && this.choice[mine] === c) { result.duplicates++; continue; }
        if (mine >= 0) this.replaceVote(mine, c);
        else if (this.count[item]! >= this.config.quorum) {
          result.skipped.push({ id: d.id, reason: `already decided by ${this.config.quorum} ${this.config.quorum === 1 ? 'person' : 'people'}` });
          continue;
        } else this.addVote(item, r, c);
        result.applied++;
        this.remember(r, item);
      }
      // Notes from any client reach terminals through exports and status: kept as plain text.
      const note = d.note ? stripControls(d.note, 'lines') : undefined;
      records.push({
        seq: ++this.seq, at, by: args.by, id: d.id, ...(d.undo ? { undo: true as const } : { choice: d.choice! }),
        ...(note ? { note } : {}), ...(args.unauthenticated === true ? { unauthenticated: true as const } : {}),
      });
    }
    return { result, records };
  }

  /**
   * Up to `count` items for `by`, in queue order: not yet decided by them, still short of
   * their quorum once other people's live holds are counted. They are held for `by` until
   * `nowMs + leaseMinutes`; no one holds more than MAX_HELD_PER_REVIEWER at once (items
   * they hold already come back first in their turn, new ones only while there is room).
   */
  claim(by: string, count: number, nowMs: number, release: string[] = []): { positions: number[]; until: number; limited?: string } {
    const r = this.reviewer(by);
    for (const id of release) {
      const item = this.ids.indexOf(id);
      if (item !== undefined) this.dropLease(item, r);
    }
    const until = nowMs + this.config.leaseMinutes * 60_000;
    const mine = this.heldBy(r, nowMs);
    let room = MAX_HELD_PER_REVIEWER - mine.size;
    let mineLeft = mine.size;
    let limited = false;
    while (this.cursor < this.total && this.count[this.cursor]! >= this.config.quorum) this.cursor++;
    const positions: number[] = [];
    for (let item = this.cursor; item < this.total && positions.length < count; item++) {
      const have = this.count[item]!;
      if (have >= this.config.quorum || this.slotOf(item, r) >= 0) continue;
      const held = (this.leases.get(item) ?? []).filter((l) => l.until > nowMs && l.r !== r);
      if (have + held.length >= this.config.quorum) continue;
      if (mine.has(item)) mineLeft--;
      else if (room > 0) room--;
      else {
        limited = true;
        // Past the cap only items they already hold can come back; stop once none are left.
        if (mineLeft === 0) break;
        continue;
      }
      this.leases.set(item, [...held, { r, until }]);
      positions.push(item);
    }
    const reason = `you hold ${MAX_HELD_PER_REVIEWER} items, the most one person may hold at once; decide or release some to get more`;
    return { positions, until, ...(limited ? { limited: reason } : {}) };
  }

  /** Items `r` holds a live lease on and may still decide; leases that lapsed are dropped on the way. */
  private heldBy(r: number, nowMs: number): Set<number> {
    const mine = new Set<number>();
    for (const [item, held] of this.leases) {
      const live = held.filter((l) => l.until > nowMs);
      if (!live.length) this.leases.delete(item);
      else if (live.some((l) => l.r === r) && this.count[item]! < this.config.quorum && this.slotOf(item, r) < 0) mine.add(item);
    }
    return mine;
  }

  /** A reviewer's latest decisions (queue positions), oldest first, with their current choice. */
  recentOf(by: string): Array<{ position: number; choice: string }> {
    const r = this.reviewerIndex.get(by);
    if (r === undefined) return [];
    return this.recent[r]!.map((item) => ({ position: item, choice: this.config.choices[this.choice[this.slotOf(item, r)]!]! }));
  }

  byReviewer(): Record<string, number> {
    return Object.fromEntries(this.reviewers.map((name, r) => [name, this.votesByReviewer[r]!]).filter(([, n]) => n));
  }

  byChoice(): Record<string, number> {
    return Object.fromEntries(this.config.choices.map((c, i) => [c, this.votesByChoice[i]!]));
  }

  snapshot(nowMs: number): QueueSnapshot {
    const parts: string[] = [];
    for (let s = 0; s < this.choice.length; s++) {
      parts.push(this.choice[s] === EMPTY ? '--' : String.fromCharCode(0x41 + this.choice[s]!, 0x100 + this.who[s]!));
    }
    const leases: QueueSnapshot['leases'] = [];
    for (const [item, held] of this.leases) for (const l of held) if (l.until > nowMs) leases.push([item, l.r, l.until]);
    return { votes: parts.join(''), reviewers: [...this.reviewers], recent: this.recent.map((list) => [...list]), leases, seq: this.seq };
  }

  private restore(s: QueueSnapshot): void {
    if (s.votes.length !== this.choice.length * 2) throw new Error(`carried votes cover ${s.votes.length / 2} slots, expected ${this.choice.length}`);
    s.reviewers.forEach((name) => this.reviewer(name));
    s.recent.forEach((list, r) => (this.recent[r] = [...list]));
    for (let slot = 0; slot < this.choice.length; slot++) {
      if (s.votes[slot * 2] === '-') continue;
      const item = Math.floor(slot / this.config.quorum);
      this.addVote(item, s.votes.charCodeAt(slot * 2 + 1) - 0x100, s.votes.charCodeAt(slot * 2) - 0x41);
    }
    for (const [item, r, until] of s.leases) this.leases.set(item, [...(this.leases.get(item) ?? []), { r, until }]);
    this.seq = s.seq;
  }

  private reviewer(name: string): number {
    let r = this.reviewerIndex.get(name);
    if (r === undefined) {
      r = this.reviewers.push(name) - 1;
      this.reviewerIndex.set(name, r);
      this.recent[r] = [];
      this.votesByReviewer[r] = 0;
    }
    return r;
  }

  private slotOf(item: number, r: number): number {
    const base = item * this.config.quorum;
    for (let k = 0; k < this.count[item]!; k++) if (this.who[base + k] === r) return base + k;
    return -1;
  }

  private addVote(item: number, r: number, c: number): void {
    const slot = item * this.config.quorum + this.count[item]!;
    this.choice[slot] = c;
    this.who[slot] = r;
    this.count[item]! += 1;
    this.votes++;
    this.votesByReviewer[r]! += 1;
    this.votesByChoice[c]! += 1;
    if (this.count[item] === this.config.quorum) this.decided++;
  }

  private replaceVote(slot: number, c: number): void {
    this.votesByChoice[this.choice[slot]!]! -= 1;
    this.votesByChoice[c]! += 1;
    this.choice[slot] = c;
  }

  private removeVote(item: number, slot: number): void {
    if (this.count[item] === this.config.quorum) this.decided--;
    this.votes--;
    this.votesByReviewer[this.who[slot]!]! -= 1;
    this.votesByChoice[this.choice[slot]!]! -= 1;
    // Keep an item's votes packed at the front of its slots.
    const last = item * this.config.quorum + this.count[item]! - 1;
    this.choice[slot] = this.choice[last]!;
    this.who[slot] = this.who[last]!;
    this.choice[last] = EMPTY;
    this.count[item]! -= 1;
    this.cursor = Math.min(this.cursor, item);
  }

  private remember(r: number, item: number): void {
    const list = this.recent[r]!.filter((i) => i !== item);
    list.push(item);
    this.recent[r] = list.slice(-RECENT_PER_REVIEWER);
  }

  private dropLease(item: number, r: number): void {
    const held = this.leases.get(item);
    if (!held) return;
    const rest = held.filter((l) => l.r !== r);
    if (rest.length) this.leases.set(item, rest);
    else this.leases.delete(item);
  }
}

/**
 * Item ids known by a hash of each (see review-ids.ts): the workflow never holds the id
 * strings of a 100K-item queue, and answers with queue positions that clients map back
 * to ids through the queue artifact.
 */
export interface IdIndex {
  size: number;
  indexOf(id: string): number | undefined;
}
