import { z } from 'zod';
import type { StageKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';

/**
 * An explicit automatic decision rule. It exists so a pipeline can run without a person
 * (the demo, CI) while saying exactly what it decided in their place; every decision it
 * makes is recorded as automatic, with the rule's text.
 */
export const decisionPolicySchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .describe('Short name, recorded as `policy:<name>` in every decision it makes.'),
  accept: z.enum(['all', 'none']).default('all')
    .describe('Start from accepting every item (then `top` and `minScore` narrow it) or none. @default all'),
  top: z.number().int().min(1).optional()
    .describe('Accept only the best `top` items of each group (by score, highest first; ties by id).'),
  minScore: z.number().optional().describe('Accept only items whose score is at least this.'),
});
export type DecisionPolicy = z.infer<typeof decisionPolicySchema>;

/** A policy in words: what the demo prints and every automatic decision's note says. */
export function describePolicy(p: DecisionPolicy): string {
  if (p.accept === 'none') return `${p.name}: reject every item`;
  const parts: string[] = [];
  if (p.top !== undefined) parts.push(`the top ${p.top} of each group by score`);
  if (p.minScore !== undefined) parts.push(`${parts.length ? 'if' : 'items whose'} score is at least ${p.minScore}`);
  const what = parts.length ? parts.join(' ') : 'every item';
  return `${p.name}: accept ${what}${parts.length ? '; reject the rest' : ''}`;
}


export const decideInputs = z.strictObject({
  items: artifactRefSchema.describe('A review-items artifact (JSONL: id, group, score, images, metadata).'),
  policy: decisionPolicySchema.describe('The automatic rule that decides every item.'),
});

const count = z.number().int().nonnegative();

export const decideOutputs = z.strictObject({
  decisions: artifactRefSchema.describe('JSONL, one decision per item: { id, choice: accept|reject, by, at, automatic: true, note }.'),
  policy: z.string().describe('The rule in words, as printed by the demo and kept in every decision note.'),
  counts: z.strictObject({ items: count, accepted: count, rejected: count }),
});

export const decideKind: StageKind = {
  uses: 'core/decide',
  version: '1',
  description:
    'Decide every item of a review-items artifact by an explicit automatic policy (accept all, the top N per group, ' +
    'those above a score) and write a decisions artifact in which each decision is marked automatic.',
  with: decideInputs,
  outputs: decideOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'activity',
  activity: 'decideByPolicy',
};

export const reviewKinds: StageKind[] = [decideKind];
