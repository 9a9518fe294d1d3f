/**
 * Refused decisions carry a failure type (workflows/messages.ts REFUSED), so the review
 * page and the CLI answer by type, never by the message's words.
 */
import { describe, expect, it } from 'vitest';
import { checkDecision } from '../../workflows/decisions.js';
import { REFUSED, type StageStatus } from '../../workflows/messages.js';
import type { CompiledStage } from '../../engine/types.js';

const gate = { id: 'gate', uses: 'core/approval', handler: 'approval' } as CompiledStage;
const shell = { id: 'build', uses: 'core/shell', handler: 'activity' } as CompiledStage;
const rec = (state: StageStatus['state'], extra: Partial<StageStatus> = {}) => ({ state, uses: 'core/approval', queue: 'cpu', needs: [], attempts: 0, events: [], ...extra }) as StageStatus;

function refusal(run: () => void): { type?: string; message: string } {
  try {
    run();
  } catch (err) {
    return err as { type?: string; message: string };
  }
  throw new Error('the decision was accepted');
}

describe('refused decisions', () => {
  it('types each refusal by why, whatever its words', () => {
    expect(refusal(() => checkDecision('approve', rec('succeeded'), gate, { stage: 'gate', by: 'ann' })).type).toBe(REFUSED.notNow);
    expect(refusal(() => checkDecision('approve', rec('waiting', { approvers: ['bob'] }), gate, { stage: 'gate', by: 'ann' })).type).toBe(REFUSED.notAllowed);
    expect(refusal(() => checkDecision('reject', rec('waiting'), gate, { stage: 'gate', by: 'ann' })).type).toBe(REFUSED.invalid);
    expect(refusal(() => checkDecision('approve', rec('waiting'), shell, { stage: 'build', by: 'ann' })).type).toBe(REFUSED.invalid);
    expect(refusal(() => checkDecision('retry', rec('succeeded'), shell, { stage: 'build', by: 'ann' })).type).toBe(REFUSED.notNow);
    expect(refusal(() => checkDecision('skip', rec('running'), shell, { stage: 'build', by: 'ann' })).type).toBe(REFUSED.notNow);
    expect(refusal(() => checkDecision('approve', rec('waiting'), gate, { stage: 'gate', by: 'a\u001b[2Jb' })).type).toBe(REFUSED.invalid);
  });

  it('accepts a decision that fits', () => {
    expect(() => checkDecision('approve', rec('waiting', { approvers: ['ann'] }), gate, { stage: 'gate', by: 'ann' })).not.toThrow();
    expect(() => checkDecision('retry', rec('failed'), shell, { stage: 'build', by: 'ann' })).not.toThrow();
  });
});
