import { z } from 'zod';
import { defineKind } from './kind.js';

const jsonObject = z.record(z.string(), z.unknown());

export const shellInputs = z.strictObject({
  run: z.string().min(1).describe('The bash script to run.'),
  env: z.record(z.string(), z.string()).optional().describe('Extra environment variables.'),
  cwd: z.string().optional().describe("Working directory (default: the worker's current directory)."),
});

export const shellKind = defineKind({
  uses: 'core/shell',
  version: '1',
  description:
    'Run a bash command. Expressions in `run` reach the command as shell variables, never as code. ' +
    'If the last line of stdout is a JSON object, it becomes the stage outputs.',
  with: shellInputs,
  outputs: jsonObject,
  defaultQueue: 'cpu',
  cacheByDefault: false,
  handler: 'activity',
  shellFields: ['run'],
});

export const approvalKind = defineKind({
  uses: 'core/approval',
  version: '1',
  description: 'Pause until a person approves (the run goes on) or rejects (the stage fails).',
  with: z.strictObject({
    message: z.string().optional().describe('What the approver should check.'),
    approvers: z.array(z.string().min(1)).optional().describe('Who may decide; anyone when absent.'),
  }),
  outputs: z.strictObject({
    approved: z.boolean(),
    by: z.string(),
    at: z.string(),
    note: z.string().optional(),
    unauthenticated: z.literal(true).optional().describe('Approved on a review page in local mode: `by` was typed, not verified.'),
  }),
  defaultQueue: 'cpu',
  cacheByDefault: false,
  handler: 'approval',
});

export const noopInputs = z.strictObject({
  outputs: jsonObject.optional().describe('Returned as the stage outputs, unchanged.'),
});

export const noopKind = defineKind({
  uses: 'core/noop',
  version: '1',
  description: 'Do nothing and return `outputs` as given: a placeholder, a join point, or a benchmark stage.',
  with: noopInputs,
  outputs: jsonObject,
  defaultQueue: 'cpu',
  cacheByDefault: false,
  handler: 'activity',
});

export const coreKinds = [shellKind, approvalKind, noopKind] as const;
