import type { CompiledStage } from '../engine/types.js';
import type { RetryArgs, StageStatus } from './messages.js';

export type DecisionKind = 'approve' | 'reject' | 'retry' | 'skip';

/**
 * Validators for decisions people send. They run before an update is accepted, so a
 * refused decision leaves no trace in history; each message says what to do instead.
 */
export function checkDecision(kind: DecisionKind, rec: StageStatus, spec: CompiledStage, args: RetryArgs): void {
  if (!args.by) throw new Error('a decision needs a name in `by`');
  switch (kind) {
    case 'approve':
    case 'reject':
      if (spec.handler !== 'approval') throw new Error(`stage ${spec.id} is a ${spec.uses} stage, not an approval`);
      if (rec.state !== 'waiting') throw new Error(`stage ${spec.id} is ${rec.state}, not waiting for approval`);
      if (rec.approvers?.length && !rec.approvers.includes(args.by)) {
        throw new Error(`${args.by} may not decide stage ${spec.id}; approvers: ${rec.approvers.join(', ')}`);
      }
      if (kind === 'reject' && !args.note?.trim()) throw new Error('a rejection needs a note saying why');
      return;
    case 'retry':
      if (rec.state !== 'failed') throw new Error(`stage ${spec.id} is ${rec.state}; only a failed stage can be retried`);
      return;
    case 'skip':
      if (rec.state !== 'failed' && rec.state !== 'waiting') {
        throw new Error(`stage ${spec.id} is ${rec.state}; only a failed or waiting stage can be skipped`);
      }
      return;
  }
}
