/**
 * `--set NAME=VALUE` overrides of pipeline parameters. Values arrive as text from the
 * command line and take the type of the parameter's default, so `--set words=500`
 * stays a number and `${{ params.words }}` compares and computes as one.
 */
import { didYouMean } from './diagnostics.js';
import type { Json, JsonObject } from './types.js';

const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

function typeName(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'boolean' ? 'true or false' : `a ${typeof value}`;
}

function parseJson(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/**
 * `text` as a value of the same type as `defaultValue`: a number, true/false, a string,
 * or JSON for lists and objects. A null default takes JSON when the text is JSON, else
 * the text. Throws an Error saying what was expected.
 */
export function coerceParam(name: string, text: string, defaultValue: Json): Json {
  const expected = `params.${name} is ${typeName(defaultValue)} (default ${JSON.stringify(defaultValue)})`;
  if (typeof defaultValue === 'string') return text;
  if (typeof defaultValue === 'number') {
    if (NUMBER.test(text.trim())) return Number(text);
    throw new Error(`${expected}; ${JSON.stringify(text)} is not a number`);
  }
  if (typeof defaultValue === 'boolean') {
    const lower = text.trim().toLowerCase();
    if (lower === 'true' || lower === 'false') return lower === 'true';
    throw new Error(`${expected}; use true or false, not ${JSON.stringify(text)}`);
  }
  const parsed = parseJson(text);
  if (defaultValue === null) return parsed === undefined ? text : parsed;
  const wantList = Array.isArray(defaultValue);
  const fits = parsed !== null && typeof parsed === 'object' && Array.isArray(parsed) === wantList;
  if (fits) return parsed;
  const example = wantList ? '\'["a","b"]\'' : '\'{"key": 1}\'';
  throw new Error(`${expected}; give it as JSON, e.g. ${example}`);
}

/** One problem with one `--set`. */
export interface OverrideProblem {
  name: string;
  message: string;
}

/** Parameter values with overrides applied, and a problem for each override that does not fit. */
export function applyOverrides(params: JsonObject, set: Record<string, string>): { params: JsonObject; problems: OverrideProblem[] } {
  const out: JsonObject = { ...params };
  const problems: OverrideProblem[] = [];
  const known = Object.keys(params);
  for (const [name, text] of Object.entries(set)) {
    if (!Object.hasOwn(params, name)) {
      const list = known.length > 0 ? `the pipeline's params are: ${known.join(', ')}` : 'the pipeline has no params';
      const hint = didYouMean(name, known);
      const guess = hint === undefined ? '' : ` (did you mean ${hint}?)`;
      problems.push({ name, message: `--set ${name}: unknown parameter ${name}${guess}; ${list}` });
      continue;
    }
    try {
      out[name] = coerceParam(name, text, params[name]!);
    } catch (err) {
      problems.push({ name, message: `--set ${name}=${text}: ${(err as Error).message}` });
    }
  }
  return { params: out, problems };
}
