/**
 * `${{ ... }}` expressions in pipeline strings: finding them, listing what they refer
 * to, resolving stage inputs and evaluating `if:` conditions. Pure code with no Node
 * imports or globals, because the Temporal workflow sandbox imports this module.
 */
import { ExpressionError, parseExpression, referencesOf, type Expr } from './expression-parser.js';
import type { Json, JsonObject } from './types.js';

export { ExpressionError, parseExpression, referencesOf, type Expr } from './expression-parser.js';

/** What expressions can read while a run is going. */
export interface ExprContext {
  params: JsonObject;
  /** Values of the current matrix expansion, when the stage has a matrix. */
  matrix?: JsonObject;
  /** Stages by YAML key: their outputs once they succeeded, or `skipped`. */
  stages: Record<string, { outputs?: JsonObject; skipped?: boolean }>;
}

/** One `${{ ... }}` in a string. */
export interface FoundExpression {
  /** The expression inside the braces, trimmed. */
  source: string;
  /** Offset of `${{` in the string. */
  start: number;
  /** Offset just after the closing `}}`. */
  end: number;
  /** Offset of `source` in the string, for pointing at a column inside the expression. */
  sourceStart: number;
}

/** One thing an expression reads: `params.NAME`, `matrix.NAME` or `stages.NAME.outputs.OUTPUT`. */
export interface ExprReference {
  kind: 'params' | 'matrix' | 'stages';
  name: string;
  /** For stages: the output read, absent when the expression reads the whole `outputs` object. */
  output?: string;
}

const OPEN = '${{';

/** Offset just after the `}}` closing the expression whose body starts at `from`, or -1. */
function closingBraces(text: string, from: number): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    // `}}` inside a 'string' literal does not close the expression.
    if (text[i] === "'") quoted = !quoted;
    else if (!quoted && text.startsWith('}}', i)) return i + 2;
  }
  return -1;
}

/** Every `${{ ... }}` in `text`, in order. Throws ExpressionError (offset of the `${{`) when one is not closed. */
export function findExpressions(text: string): FoundExpression[] {
  const found: FoundExpression[] = [];
  let from = text.indexOf(OPEN);
  while (from !== -1) {
    const end = closingBraces(text, from + OPEN.length);
    if (end === -1) throw new ExpressionError('unterminated ${{: close the expression with }}', from);
    const inner = text.slice(from + OPEN.length, end - 2);
    const lead = inner.length - inner.trimStart().length;
    found.push({ source: inner.trim(), start: from, end, sourceStart: from + OPEN.length + lead });
    from = text.indexOf(OPEN, end);
  }
  return found;
}

function toReference(ref: Extract<Expr, { type: 'ref' }>): ExprReference {
  if (ref.root !== 'stages') return { kind: ref.root, name: ref.path[0]! };
  const output = ref.path[2];
  return output === undefined ? { kind: 'stages', name: ref.path[0]! } : { kind: 'stages', name: ref.path[0]!, output };
}

function forEachString(value: Json, visit: (text: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) value.forEach((item) => forEachString(item, visit));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((item) => forEachString(item, visit));
}

/**
 * Every reference in every string inside `value`, without duplicates. Expressions that
 * do not parse are left out: compiling the pipeline reports them with a position.
 */
export function references(value: Json): ExprReference[] {
  const seen = new Map<string, ExprReference>();
  forEachString(value, (text) => {
    let found: FoundExpression[];
    try {
      found = findExpressions(text);
    } catch {
      return;
    }
    for (const { source } of found) {
      let expr: Expr;
      try {
        expr = parseExpression(source);
      } catch {
        continue;
      }
      for (const ref of referencesOf(expr).map(toReference)) seen.set(`${ref.kind}.${ref.name}.${ref.output ?? ''}`, ref);
    }
  });
  return [...seen.values()];
}

function names(object: JsonObject): string {
  const keys = Object.keys(object);
  return keys.length === 0 ? '(none)' : keys.join(', ');
}

function descend(value: Json, path: string[], what: string): Json {
  let current = value;
  let where = what;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) {
      throw new ExpressionError(`${where} has no field ${key}`);
    }
    current = (current as Record<string, Json>)[key]!;
    where = `${where}.${key}`;
  }
  return current;
}

function lookupStage(path: string[], ctx: ExprContext): Json {
  const [id, , output, ...rest] = path as [string, string, string | undefined, ...string[]];
  const stage = ctx.stages[id];
  if (stage?.skipped) throw new ExpressionError(`stage ${id} was skipped, so it has no outputs`);
  if (!stage?.outputs) throw new ExpressionError(`stage ${id} has no outputs yet (it has not succeeded)`);
  if (output === undefined) return stage.outputs;
  if (!Object.hasOwn(stage.outputs, output)) {
    throw new ExpressionError(`stage ${id} has no output ${output}; its outputs are: ${names(stage.outputs)}`);
  }
  return descend(stage.outputs[output]!, rest, `stages.${id}.outputs.${output}`);
}

function lookup(ref: Extract<Expr, { type: 'ref' }>, ctx: ExprContext): Json {
  if (ref.root === 'stages') return lookupStage(ref.path, ctx);
  const [name, ...rest] = ref.path as [string, ...string[]];
  const scope = ref.root === 'params' ? ctx.params : ctx.matrix;
  if (!scope || !Object.hasOwn(scope, name)) {
    const known = scope ? `; known: ${names(scope)}` : '; this stage has no matrix';
    throw new ExpressionError(`${ref.root}.${name} is not defined${known}`);
  }
  return descend(scope[name]!, rest, `${ref.root}.${name}`);
}

/** JavaScript truthiness, except that the string 'false' is false too (values often arrive as text). */
export function truthy(value: Json): boolean {
  return value === 'false' ? false : Boolean(value);
}

function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  return keysA.length === keysB.length && keysA.every((k) => Object.hasOwn(b, k) && jsonEqual((a as JsonObject)[k]!, (b as JsonObject)[k]!));
}

function compare(op: '<' | '<=' | '>' | '>=', a: Json, b: Json): boolean {
  // Only like with like: a number is never less than a string.
  if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) return false;
  if (op === '<') return a < b;
  if (op === '<=') return a <= b;
  if (op === '>') return a > b;
  return a >= b;
}

/** Value of an expression. `&&` and `||` return an operand, as in JavaScript, so `a || 'default'` works. */
export function evaluate(expr: Expr, ctx: ExprContext): Json {
  switch (expr.type) {
    case 'literal':
      return expr.value;
    case 'ref':
      return lookup(expr, ctx);
    case 'not':
      return !truthy(evaluate(expr.operand, ctx));
    case 'binary': {
      const left = evaluate(expr.left, ctx);
      if (expr.op === '&&') return truthy(left) ? evaluate(expr.right, ctx) : left;
      if (expr.op === '||') return truthy(left) ? left : evaluate(expr.right, ctx);
      const right = evaluate(expr.right, ctx);
      if (expr.op === '==') return jsonEqual(left, right);
      if (expr.op === '!=') return !jsonEqual(left, right);
      return compare(expr.op, left, right);
    }
  }
}

function evaluateSource(source: string, ctx: ExprContext): Json {
  try {
    return evaluate(parseExpression(source), ctx);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    throw new ExpressionError(`in \${{ ${source} }}: ${err.message}`, err.offset);
  }
}

function asText(value: Json): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A string with its expressions replaced: the value itself (any JSON type) when the string is exactly one expression. */
function resolveString(text: string, ctx: ExprContext): Json {
  const found = findExpressions(text);
  if (found.length === 0) return text;
  if (found.length === 1 && found[0]!.start === 0 && found[0]!.end === text.length) return evaluateSource(found[0]!.source, ctx);
  let out = '';
  let last = 0;
  for (const expr of found) {
    out += text.slice(last, expr.start) + asText(evaluateSource(expr.source, ctx));
    last = expr.end;
  }
  return out + text.slice(last);
}

/**
 * A shell script with each expression replaced by a quoted variable reference, the
 * values going to `shellEnv`. The shell expands a variable as one word and never
 * parses it as code, so outputs such as `$(rm -rf ~)` stay text.
 */
function substituteShell(text: string, ctx: ExprContext, shellEnv: Record<string, string>): string {
  let out = '';
  let last = 0;
  for (const expr of findExpressions(text)) {
    const name = `TWINFLOW_EXPR_${Object.keys(shellEnv).length}`;
    shellEnv[name] = asText(evaluateSource(expr.source, ctx));
    out += `${text.slice(last, expr.start)}"\${${name}}"`;
    last = expr.end;
  }
  return out + text.slice(last);
}

function mapStrings(value: Json, map: (text: string) => Json): Json {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapStrings(item, map)]));
  }
  return value;
}

/**
 * Stage inputs with every expression resolved. Top-level fields named in `shellFields`
 * get `"${TWINFLOW_EXPR_<n>}"` in place of each expression and the value in `shellEnv`
 * (strings as they are, anything else as JSON). Throws ExpressionError when an
 * expression reads a missing parameter, a skipped stage or an output a stage lacks.
 */
export function resolveInputs(
  template: JsonObject,
  ctx: ExprContext,
  shellFields: string[],
): { with: JsonObject; shellEnv: Record<string, string> } {
  const shellEnv: Record<string, string> = {};
  const resolved: JsonObject = {};
  for (const [key, value] of Object.entries(template)) {
    resolved[key] = shellFields.includes(key)
      ? mapStrings(value, (text) => substituteShell(text, ctx, shellEnv))
      : mapStrings(value, (text) => resolveString(text, ctx));
  }
  return { with: resolved, shellEnv };
}

/**
 * Inputs with what is known resolved and the rest left as written, for people to read
 * (`twinflow plan` before earlier stages have run). Shell fields get values as text here;
 * only resolveInputs may feed a shell.
 */
export function resolveKnown(template: JsonObject, ctx: ExprContext): JsonObject {
  const attempt = (source: string): { value: Json } | undefined => {
    try {
      return { value: evaluateSource(source, ctx) };
    } catch (err) {
      if (err instanceof ExpressionError) return undefined;
      throw err;
    }
  };
  return mapStrings(template, (text) => {
    const found = findExpressions(text);
    if (found.length === 1 && found[0]!.start === 0 && found[0]!.end === text.length) return attempt(found[0]!.source)?.value ?? text;
    let out = '';
    let last = 0;
    for (const expr of found) {
      const known = attempt(expr.source);
      out += text.slice(last, expr.start) + (known ? asText(known.value) : text.slice(expr.start, expr.end));
      last = expr.end;
    }
    return out + text.slice(last);
  }) as JsonObject;
}

/**
 * The expression of an `if:`, without `${{ }}`: conditions may be written with or
 * without them. Throws ExpressionError for text mixed with `${{ }}`, which is a string
 * and never a condition.
 */
export function conditionSource(text: string): string {
  const found = findExpressions(text);
  if (found.length === 0) return text.trim();
  const only = found[0]!;
  if (found.length === 1 && text.slice(0, only.start).trim() === '' && text.slice(only.end).trim() === '') return only.source;
  throw new ExpressionError('a condition is one expression: put all of it inside one ${{ }}, or leave ${{ }} out', found[0]!.start);
}

/** Whether a condition holds. Falsy: false, null, 0, '' and 'false'. */
export function evaluateCondition(source: string, ctx: ExprContext): boolean {
  return truthy(evaluateSource(conditionSource(source), ctx));
}
