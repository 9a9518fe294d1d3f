import { describe, expect, it } from 'vitest';
import { ReviewQueue } from '../../workflows/review-queue.js';
import { encodeHashes, hashIndex, idHash } from '../../workflows/review-ids.js';
import { MAX_HELD_PER_REVIEWER, stripControls, type ReviewConfig } from '../../workflows/review-messages.js';
import { finalDecisions, replayVotes } from '../../activities/review/audit.js';
import { REFUSED } from '../../workflows/messages.js';

const config = (over: Partial<ReviewConfig> = {}): ReviewConfig => ({ choices: ['accept', 'reject'], quorum: 1, onDeadline: 'fail', assignees: [], leaseMinutes: 10, ...over });
const ids = (n: number) => Array.from({ length: n }, (_, i) => `dup:B0${i}|B1${i}`);
const queue = (n: number, over?: Partial<ReviewConfig>) => new ReviewQueue(hashIndex(encodeHashes(ids(n))), config(over));
const decide = (q: ReviewQueue, by: string, decisions: Array<{ id: string; choice?: string; undo?: boolean; note?: string }>, unauthenticated?: boolean) => {
  const args = { runId: 'r', stage: 's', by, decisions, ...(unauthenticated ? { unauthenticated } : {}) };
  q.check(args);
  return q.apply(args, '2026-11-29T00:00:00.000Z');
};

describe('review id hashes', () => {
  it('finds every id of a 100,000-item queue at its position and no id outside it', () => {
    const all = Array.from({ length: 100_000 }, (_, i) => `hn:instance-${i}|instance-${(i * 7919) % 100_000}`);
    const index = hashIndex(encodeHashes(all));
    expect(index.size).toBe(100_000);
    expect(all.every((id, i) => index.indexOf(id) === i)).toBe(true);
    expect(index.indexOf('hn:instance-100000|instance-0')).toBeUndefined();
    expect(new Set(all.map(idHash)).size).toBe(all.length);
  });
});

describe('ReviewQueue', () => {
  it('refuses a whole batch when one decision is invalid, naming each problem', () => {
    const q = queue(3);
    expect(() => q.check({ runId: 'r', stage: 's', by: 'a', decisions: [{ id: ids(3)[0]!, choice: 'accept' }, { id: 'nope', choice: 'accept' }, { id: ids(3)[1]!, choice: 'maybe' }] }))
      .toThrow(/decision 2 \(item nope\): unknown item; decision 3 .*"maybe" is not a choice/);
    expect(() => q.check({ runId: 'r', stage: 's', by: ' ', decisions: [{ id: ids(3)[0]!, choice: 'accept' }] })).toThrow(/reviewer's name/);
    expect(q.votes).toBe(0);
  });

  it('refuses people who are not assignees, with a failure type the page answers 403 for', () => {
    const refusal = (() => {
      try {
        queue(1, { assignees: ['ann'] }).checkReviewer('bob');
      } catch (err) {
        return err as { type?: string; message: string };
      }
    })();
    expect(refusal).toMatchObject({ type: REFUSED.notAllowed, message: 'bob may not decide this review; assignees: ann' });
  });

  it('refuses reviewer names with control characters, and keeps notes as plain text with their lines', () => {
    const q = queue(1);
    for (const by of ['ann\u001b[2J', 'ann\u0007', 'ann\r', 'ann\u009b31m', 'a\u0000nn']) {
      expect(() => q.checkReviewer(by), JSON.stringify(by)).toThrow(/holds control characters; send the name as plain text/);
    }
    const { records } = decide(q, 'ann', [{ id: ids(1)[0]!, choice: 'accept', note: 'same\u001b]0;owned\u0007 logo\r\nsame\tshape\u009b' }]);
    expect(records[0]!.note).toBe('same]0;owned logo\nsame\tshape');
    expect(stripControls('a\u001bb\nc\td\u007f')).toBe('abcd');
  });

  it('marks decisions whose name nobody checked as unauthenticated in the audit, and the final decision with them', () => {
    const q = queue(2, { quorum: 2 });
    const [a] = ids(2) as [string, string];
    const records = [...decide(q, 'ann', [{ id: a, choice: 'accept' }], true).records, ...decide(q, 'bob', [{ id: a, choice: 'accept' }]).records];
    expect(records.map((r) => [r.by, r.unauthenticated])).toEqual([['ann', true], ['bob', undefined]]);
    const [decision] = finalDecisions([a], replayVotes(records), { choices: ['accept', 'reject'], quorum: 2 }).decisions;
    expect(decision).toMatchObject({ unauthenticated: true, votes: [{ by: 'ann', unauthenticated: true }, { by: 'bob' }] });
  });

  it('lets one person hold at most MAX_HELD_PER_REVIEWER items at once, saying why a claim came back short', () => {
    const q = queue(80);
    const ann = q.claim('ann', 200, 0);
    expect(ann.positions).toEqual([...Array(MAX_HELD_PER_REVIEWER).keys()]);
    expect(ann.limited).toMatch(/you hold 50 items, the most one person may hold at once; decide or release some/);
    expect(q.claim('ann', 10, 1000)).toMatchObject({ positions: [...Array(10).keys()] });
    expect(q.claim('ann', 200, 2000).positions).toHaveLength(MAX_HELD_PER_REVIEWER);
    expect(q.claim('bob', 20, 3000)).toEqual({ positions: [...Array(20).keys()].map((i) => i + 50), until: 3000 + 600_000 });
    decide(q, 'ann', ids(80).slice(0, 5).map((id) => ({ id, choice: 'accept' })));
    expect(q.claim('ann', 200, 4000).positions).toEqual([...Array(45).keys()].map((i) => i + 5).concat([70, 71, 72, 73, 74]));
  });

  it('hands items back at once on release, taking none in exchange when the count is 0', () => {
    const q = queue(4);
    expect(q.claim('ann', 4, 0).positions).toEqual([0, 1, 2, 3]);
    expect(q.claim('bob', 4, 0).positions).toEqual([]);
    expect(q.claim('ann', 0, 1000, ids(4).slice(0, 3)).positions).toEqual([]);
    expect(q.claim('bob', 4, 1000).positions).toEqual([0, 1, 2]);
  });

  it('counts a repeated decision once, replaces a changed one, and reopens an item on undo', () => {
    const q = queue(2);
    const [a, b] = ids(2) as [string, string];
    expect(decide(q, 'ann', [{ id: a, choice: 'accept' }, { id: a, choice: 'accept' }]).result).toMatchObject({ applied: 1, duplicates: 1 });
    expect(decide(q, 'ann', [{ id: a, choice: 'reject' }]).result.applied).toBe(1);
    expect(q.byChoice()).toEqual({ accept: 0, reject: 1 });
    expect(decide(q, 'bob', [{ id: a, choice: 'accept' }]).result.skipped).toEqual([{ id: a, reason: 'already decided by 1 person' }]);
    decide(q, 'ann', [{ id: b, choice: 'accept' }]);
    expect(q.decided).toBe(2);
    expect(decide(q, 'ann', [{ id: a, undo: true }, { id: a, undo: true }]).result).toMatchObject({ undone: 1, duplicates: 1 });
    expect(q.decided).toBe(1);
    expect(q.recentOf('ann')).toEqual([{ position: 1, choice: 'accept' }]);
    expect(q.claim('bob', 5, 0).positions).toEqual([0]);
  });

  it('hands different people different items, except as many as the quorum asks for, until a hold lapses', () => {
    const q = queue(4, { quorum: 2, leaseMinutes: 1 });
    expect(q.claim('ann', 2, 0).positions).toEqual([0, 1]);
    expect(q.claim('bob', 4, 0).positions).toEqual([0, 1, 2, 3]);
    expect(q.claim('cat', 4, 0).positions).toEqual([2, 3]);
    expect(q.claim('dan', 4, 0).positions).toEqual([]);
    expect(q.claim('dan', 4, 61_000).positions).toEqual([0, 1, 2, 3]);
  });

  it('carries its state across continue-as-new exactly', () => {
    const q = queue(5, { quorum: 2, choices: ['0', '1', '2', '3'] });
    const all = ids(5);
    decide(q, 'ann', all.map((id, i) => ({ id, choice: String(i % 4) })));
    decide(q, 'bob', [{ id: all[0]!, choice: '0' }, { id: all[3]!, choice: '1' }]);
    q.claim('cat', 2, 1000);
    const copy = new ReviewQueue(hashIndex(encodeHashes(all)), config({ quorum: 2, choices: ['0', '1', '2', '3'] }), JSON.parse(JSON.stringify(q.snapshot(1000))));
    expect([copy.decided, copy.votes, copy.seq]).toEqual([q.decided, q.votes, q.seq]);
    expect(copy.byReviewer()).toEqual({ ann: 5, bob: 2 });
    expect(copy.byChoice()).toEqual(q.byChoice());
    expect(copy.recentOf('bob')).toEqual(q.recentOf('bob'));
    expect(copy.claim('dan', 5, 2000).positions).toEqual(q.claim('dan', 5, 2000).positions);
  });

  it('agrees with the audit replay that writes the stage outputs', () => {
    const q = queue(3, { quorum: 2 });
    const all = ids(3);
    const records = [
      ...decide(q, 'ann', all.map((id) => ({ id, choice: 'accept' }))).records,
      ...decide(q, 'bob', [{ id: all[0]!, choice: 'reject' }, { id: all[1]!, choice: 'accept' }]).records,
      ...decide(q, 'bob', [{ id: all[0]!, undo: true }]).records,
      ...decide(q, 'cat', [{ id: all[0]!, choice: 'accept' }]).records,
    ];
    const tally = finalDecisions(all, replayVotes(records), { choices: ['accept', 'reject'], quorum: 2 });
    expect(tally.decisions.map((d) => d.id)).toEqual(all.slice(0, 2));
    expect(tally.decisions.length).toBe(q.decided);
    expect(tally.reviewers).toEqual(q.byReviewer());
    expect(tally.counts).toMatchObject({ undecided: 1, accept: 2 });
  });
});
