import { ApplicationFailure } from '@temporalio/workflow';
import type { CompiledStage } from '../engine/types.js';
import { REFUSED, type RetryArgs, type StageStatus } from './messages.js';
import { hasControls, stripControls } from './review-messages.js';

const now = () => new Date().toISOString();

/** A refused decision, typed so that clients (the review page's HTTP codes) need not read its words. */
export function refuse(type: (typeof REFUSED)[keyof typeof REFUSED], message: string): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true });
}

export type DecisionKind = 'approve' | 'reject' | 'retry' | 'skip';

/**
 * Validators for decisions people send. They run before an update is accepted, so a
 * refused decision leaves no trace in history; each message says what to do instead.
 */
export function checkDecision(kind: DecisionKind, rec: StageStatus, spec: CompiledStage, args: RetryArgs): void {
  if (!args.by) refuse(REFUSED.invalid, 'a decision needs a name in `by`');
  // Names reach terminals through `twinflow status`: an ESC sequence in one could rewrite them.
  if (hasControls(args.by)) refuse(REFUSED.invalid, `the name ${JSON.stringify(args.by)} holds control characters; send the name as plain text`);
  switch (kind) {
    case 'approve':
    case 'reject':
      if (spec.handler !== 'approval') refuse(REFUSED.invalid, `stage ${spec.id} is a ${spec.uses} stage, not an approval`);
      if (rec.state !== 'waiting') refuse(REFUSED.notNow, `stage ${spec.id} is ${rec.state}, not waiting for approval`);
      if (rec.approvers?.length && !rec.approvers.includes(args.by)) {
        refuse(REFUSED.notAllowed, `${args.by} may not decide stage ${spec.id}; approvers: ${rec.approvers.join(', ')}`);
      }
      if (kind === 'reject' && !args.note?.trim()) refuse(REFUSED.invalid, 'a rejection needs a note saying why');
      return;
    case 'retry':
      if (rec.state !== 'failed') refuse(REFUSED.notNow, `stage ${spec.id} is ${rec.state}; only a failed stage can be retried`);
      return;
    case 'skip':
      if (rec.state !== 'failed' && rec.state !== 'waiting') {
        refuse(REFUSED.notNow, `stage ${spec.id} is ${rec.state}; only a failed or waiting stage can be skipped`);
      }
      if (rec.waitingFor === 'review') {
        refuse(REFUSED.notNow, `stage ${spec.id} is an open review; decide its items (twinflow review), let its deadline act, or cancel the run`);
      }
      return;
  }
}

/** Applies an accepted decision to the stage's record; the interpreter's loop takes it from there. */
export function applyDecision(kind: DecisionKind, rec: StageStatus, args: { by: string; note?: string; set?: Record<string, unknown>; unauthenticated?: true }): void {
  const at = now();
  const by = args.by;
  const note = args.note === undefined ? undefined : stripControls(args.note, 'lines');
  const typed = args.unauthenticated === true ? { unauthenticated: true as const } : {};
  if (kind === 'approve') {
    rec.approval = { decision: 'approved', by, at, note, ...typed };
    Object.assign(rec, { state: 'succeeded', waitingFor: undefined, endedAt: at, outputs: { approved: true, by, at, ...(note ? { note } : {}), ...typed } });
    rec.events.push({ at, event: 'approved', by, note, ...typed });
  } else if (kind === 'reject') {
    rec.approval = { decision: 'rejected', by, at, note, ...typed };
    Object.assign(rec, { state: 'failed', waitingFor: undefined, endedAt: at, error: { message: `rejected by ${by}: ${note ?? ''}`, type: 'Rejected' } });
    rec.events.push({ at, event: 'rejected', by, note, ...typed });
  } else if (kind === 'retry') {
    const set = args.set as StageStatus['overrides'];
    Object.assign(rec, { state: 'pending', error: undefined, waitingFor: undefined, overrides: { ...rec.overrides, ...set } });
    rec.events.push({ at, event: 'retry', by, note, ...(set && Object.keys(set).length ? { set } : {}) });
  } else {
    Object.assign(rec, { state: 'skipped', waitingFor: undefined, endedAt: at, skippedReason: `skipped by ${by}${note ? `: ${note}` : ''}` });
    rec.events.push({ at, event: 'skip', by, note });
  }
}
