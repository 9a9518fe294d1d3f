/**
 * zod issues rewritten for people: at the YAML node they are about, in words that say
 * what was expected and what was found, with a suggestion for misspelled field names.
 */
import type { z } from 'zod';
import { suggestion, type Diagnostic } from './diagnostics.js';
import type { PipelineSource, ValuePath } from './pipeline-source.js';

type Issue = z.core.$ZodIssue;

/** How issue paths relate to the file. */
export interface IssueContext {
  source: PipelineSource;
  /** The value that was validated, to say what was found. */
  input: unknown;
  /** Path of that value in the file (`['stages', 'a', 'with']` for a kind's inputs). */
  base?: ValuePath;
  /** Field names allowed in the mapping at a path (relative to `input`), for "did you mean". */
  fieldsAt?: (path: ValuePath) => readonly string[] | undefined;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'an empty value',
};

/** zod's own wording, as opposed to messages written in our schemas. */
const ZOD_DEFAULT = /^(Invalid|Too (small|big)|Unrecognized|Expected)/;

/** A short description of a value as found in the file. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  return String(value);
}

function valueAt(value: unknown, path: ValuePath): unknown {
  let current = value;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

function pathText(path: ValuePath): string {
  return path.map(String).join('.');
}

function sizeMessage(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>): string {
  const limit = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  const word = issue.code === 'too_small' ? 'at least' : 'at most';
  if (issue.origin === 'string') return limit === 1 && issue.code === 'too_small' ? 'must not be empty' : `must be ${word} ${limit} characters long`;
  if (issue.origin === 'array' || issue.origin === 'set') return `needs ${word} ${limit} item${limit === 1 ? '' : 's'}`;
  return `must be ${word} ${limit}`;
}

function valueMessage(issue: Issue, found: unknown): string {
  const custom = !ZOD_DEFAULT.test(issue.message);
  switch (issue.code) {
    case 'invalid_type':
      return `${custom ? issue.message : `expected ${EXPECTED[issue.expected] ?? issue.expected}`}, found ${describeValue(found)}`;
    case 'invalid_union':
      return `${custom ? issue.message : 'this value does not fit'}, found ${describeValue(found)}`;
    case 'too_small':
    case 'too_big':
      return custom ? issue.message : sizeMessage(issue);
    case 'invalid_value':
      return custom ? issue.message : `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

function unknownFields(issue: Extract<Issue, { code: 'unrecognized_keys' }>, path: ValuePath, ctx: IssueContext): Diagnostic[] {
  const full = [...(ctx.base ?? []), ...path];
  const allowed = ctx.fieldsAt?.(path) ?? [];
  return issue.keys.map((key) => {
    const where = full.length > 0 ? ` in ${pathText(full)}` : '';
    const hint = suggestion(key, allowed) || (allowed.length > 0 ? `; allowed: ${allowed.join(', ')}` : '');
    return ctx.source.diagnostic([...full, key], `unknown field ${key}${where}${hint}`, { key: true });
  });
}

function issueToDiagnostics(issue: Issue, ctx: IssueContext): Diagnostic[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const full = [...(ctx.base ?? []), ...path];
  if (issue.code === 'unrecognized_keys') return unknownFields(issue, path, ctx);
  if (issue.code === 'invalid_key') {
    const inner = issue.issues[0]?.message ?? issue.message;
    return [ctx.source.diagnostic(full, `${pathText(full)}: ${inner}`, { key: true })];
  }
  const found = valueAt(ctx.input, path);
  if (found === undefined && issue.code === 'invalid_type' && path.length > 0) {
    // A missing field has no node of its own: point at the mapping that lacks it.
    const parent = full.slice(0, -1);
    const owner = parent.length > 0 ? `${pathText(parent)}: ` : '';
    return [ctx.source.diagnostic(parent, `${owner}missing required field ${String(full.at(-1))}`)];
  }
  const label = full.length > 0 ? `${pathText(full)}: ` : '';
  return [ctx.source.diagnostic(full, `${label}${valueMessage(issue, found)}`)];
}

/** Diagnostics for every zod issue, each at the node it concerns. */
export function issueDiagnostics(issues: readonly Issue[], ctx: IssueContext): Diagnostic[] {
  return issues.flatMap((issue) => issueToDiagnostics(issue, ctx));
}
