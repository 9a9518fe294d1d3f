import { z } from 'zod';
import { defineKind } from './kind.js';
import { artifactRefSchema } from './artifact.js';
import { DURATION_HINT, DURATION_PATTERN } from '../duration.js';

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

export const decideKind = defineKind({
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
});

const DEADLINE_ACTIONS = ['fail', 'accept-remaining', 'reject-remaining', 'keep-waiting'] as const;

export const reviewInputs = z.strictObject({
  items: artifactRefSchema.describe('A review-items artifact (JSONL: id, images, optional group, score, question, metadata).'),
  mode: z.enum(['people', 'policy']).optional()
    .describe('`people`: a queue on the review page; `policy`: `policy` decides every item at once. @default policy when a policy is given, else people'),
  policy: decisionPolicySchema.optional().describe('An explicit automatic rule; every decision it makes is recorded as automatic.'),
  choices: z.array(z.string().min(1).max(40).regex(/^[^\s]+$/, 'one word per choice')).min(2).max(10).optional()
    .describe('What a reviewer answers, in the order shown (keys 1-9 follow it). @default [accept, reject]'),
  quorum: z.number().int().min(1).max(9).default(1).describe('Decisions each item needs from different people; agreement is reported. @default 1'),
  deadline: z.string().regex(new RegExp(DURATION_PATTERN), DURATION_HINT).optional().describe('How long the review stays open, e.g. 48h.'),
  onDeadline: z.enum(DEADLINE_ACTIONS).default('fail')
    .describe('At the deadline: fail the stage (decisions kept for a retry), accept or reject what is left, or keep waiting. @default fail'),
  assignees: z.array(z.string().min(1)).optional().describe('Who may decide; anyone when absent.'),
  title: z.string().max(200).optional().describe('Shown above the items on the review page.'),
  question: z.string().max(2000).optional().describe("What the reviewer answers, unless an item has its own `question`."),
  leaseMinutes: z.number().int().min(1).max(24 * 60).default(10)
    .describe('How long items handed to one reviewer are held back from others. @default 10'),
}).superRefine((v, ctx) => {
  const choices = v.choices ?? ['accept', 'reject'];
  if (new Set(choices).size !== choices.length) ctx.addIssue({ code: 'custom', path: ['choices'], message: 'choices must differ' });
  const needs = v.onDeadline === 'accept-remaining' ? 'accept' : v.onDeadline === 'reject-remaining' ? 'reject' : undefined;
  if (needs && !choices.includes(needs)) {
    ctx.addIssue({ code: 'custom', path: ['onDeadline'], message: `${v.onDeadline} needs "${needs}" among the choices; use fail or keep-waiting` });
  }
  if (v.mode === 'policy' && !v.policy) ctx.addIssue({ code: 'custom', path: ['policy'], message: 'mode: policy needs a policy' });
  if (v.policy && v.policy.accept !== undefined && !choices.includes('accept')) {
    ctx.addIssue({ code: 'custom', path: ['policy'], message: 'a policy decides accept/reject; keep those two among the choices' });
  }
});
export type ReviewInputs = z.infer<typeof reviewInputs>;

export const reviewOutputs = z.strictObject({
  decisions: artifactRefSchema.describe('JSONL, one final decision per item: { id, choice, by, at, automatic, note?, votes?, agreement? }.'),
  audit: artifactRefSchema.describe('JSONL, every decision and undo as it arrived: { seq, at, by, id, choice | undo, note?, automatic? }.'),
  outcome: z.enum(['complete', 'deadline', 'policy']).describe('How the review ended.'),
  policy: z.string().optional().describe('The automatic rule in words, when a policy decided.'),
  counts: z.record(z.string(), z.number()).describe('items, by people, automatic, and one count per choice.'),
  reviewers: z.record(z.string(), z.number()).describe('Decisions per person.'),
  agreement: z.strictObject({ quorum: z.number(), mean: z.number(), unanimous: z.number(), ties: z.number() }).optional()
    .describe('With quorum > 1: mean share of votes for the final choice, share of unanimous items, ties.'),
});

export const reviewKind = defineKind({
  uses: 'core/review',
  version: '1',
  description:
    'A queue of items for people to decide one by one on the review page (or in bulk with `twinflow review decide`), ' +
    'held durably by a review workflow; or decided at once by an explicit policy, recorded as automatic.',
  with: reviewInputs,
  outputs: reviewOutputs,
  defaultQueue: 'cpu',
  cacheByDefault: true,
  handler: 'review',
});

export const reviewKinds = [decideKind, reviewKind] as const;
