/**
 * Compile-time checks of the expressions in `with` and `if`: they parse, and every
 * `params.*`, `matrix.*` and `stages.*` they read exists. The stage references found
 * become implicit dependencies.
 */
import { z } from 'zod';
import { suggestOrList, type Diagnostic } from './diagnostics.js';
import { conditionSource, ExpressionError, findExpressions, parseExpression, referencesOf, type Expr } from './expressions.js';
import { getKind } from './kinds/registry.js';
import type { PipelineSource, Position, ValuePath } from './pipeline-source.js';
import type { PipelineSpec, StageSpec } from './schema.js';
import type { Json } from './types.js';

/** A stage read by an expression, with where it is read. */
export interface StageReference {
  stage: string;
  position: Position;
}

/** What expression checks need to know about the pipeline and the stage being checked. */
export interface ExpressionScope {
  spec: PipelineSpec;
  source: PipelineSource;
  stageKey: string;
  diagnostics: Diagnostic[];
}

type Ref = Extract<Expr, { type: 'ref' }>;

function known(list: readonly string[], word: string, what: string): string {
  return suggestOrList(word, list, what);
}

/** Named outputs of a kind, when its output schema lists them. */
function kindOutputs(uses: string): string[] | undefined {
  const outputs = getKind(uses)?.outputs;
  return outputs instanceof z.ZodObject ? Object.keys(outputs.shape) : undefined;
}

function stageProblem(ref: Ref, scope: ExpressionScope): string | undefined {
  const [id, , output] = ref.path as [string, string, string | undefined];
  const target: StageSpec | undefined = Object.hasOwn(scope.spec.stages, id) ? scope.spec.stages[id] : undefined;
  if (!target) return `stages.${id}: unknown stage ${id}${known(Object.keys(scope.spec.stages), id, 'stages')}`;
  if (id === scope.stageKey) return `stage ${id} cannot read its own outputs`;
  if (target.matrix) {
    return `stages.${id}: ${id} has a matrix, so it has one set of outputs per expansion; no single ${output ?? 'outputs'} to read`;
  }
  const outputs = kindOutputs(target.uses);
  if (output !== undefined && outputs && !outputs.includes(output)) {
    return `stages.${id}.outputs.${output}: ${target.uses} has no output ${output}${known(outputs, output, 'its outputs')}`;
  }
  return undefined;
}

function referenceProblem(ref: Ref, scope: ExpressionScope): string | undefined {
  const name = ref.path[0]!;
  if (ref.root === 'stages') return stageProblem(ref, scope);
  if (ref.root === 'params') {
    const params = Object.keys(scope.spec.params ?? {});
    return params.includes(name) ? undefined : `params.${name}: unknown parameter${known(params, name, 'params')}`;
  }
  const matrix = scope.spec.stages[scope.stageKey]?.matrix;
  if (!matrix) return `matrix.${name}: stage ${scope.stageKey} has no matrix`;
  const names = Object.keys(matrix);
  return names.includes(name) ? undefined : `matrix.${name}: unknown matrix value${known(names, name, 'matrix')}`;
}

/**
 * Checks one expression whose source starts at `sourceStart` in `text` (the string at
 * `path`, found between `snippetStart` and `snippetEnd`); returns the stages it reads.
 */
function checkExpression(
  source: string,
  at: { path: ValuePath; text: string; snippetStart: number; snippetEnd: number; sourceStart: number },
  scope: ExpressionScope,
): StageReference[] {
  const position = (offset: number) => scope.source.inString(at.path, at.text, at.snippetStart, at.snippetEnd, at.sourceStart + offset);
  const report = (offset: number, message: string) => scope.diagnostics.push({ file: scope.source.file, ...position(offset), message });
  let expr: Expr;
  try {
    expr = parseExpression(source);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    report(err.offset ?? 0, `invalid expression: ${err.message}`);
    return [];
  }
  const stages: StageReference[] = [];
  for (const ref of referencesOf(expr)) {
    const problem = referenceProblem(ref, scope);
    if (problem) report(ref.offset, problem);
    else if (ref.root === 'stages') stages.push({ stage: ref.path[0]!, position: position(ref.offset) });
  }
  return stages;
}

/** Checks every expression in one string of `with`. */
function checkString(text: string, path: ValuePath, scope: ExpressionScope): StageReference[] {
  try {
    return findExpressions(text).flatMap((found) =>
      checkExpression(found.source, { path, text, snippetStart: found.start, snippetEnd: found.end, sourceStart: found.sourceStart }, scope),
    );
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    const position = scope.source.inString(path, text, err.offset ?? 0, text.length, err.offset ?? 0);
    scope.diagnostics.push({ file: scope.source.file, ...position, message: err.message });
    return [];
  }
}

/** Checks every string inside a `with` value; returns the stages read. */
export function checkWith(value: Json, path: ValuePath, scope: ExpressionScope): StageReference[] {
  if (typeof value === 'string') return checkString(value, path, scope);
  if (Array.isArray(value)) return value.flatMap((item, i) => checkWith(item, [...path, i], scope));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => checkWith(item, [...path, key], scope));
  }
  return [];
}

/**
 * Checks an `if:` and returns its expression without `${{ }}` (as the compiled stage
 * keeps it), or undefined when it is broken.
 */
export function checkCondition(text: string, path: ValuePath, scope: ExpressionScope): { source?: string; stages: StageReference[] } {
  let source: string;
  try {
    source = conditionSource(text);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    const position = scope.source.inString(path, text, err.offset ?? 0, text.length, err.offset ?? 0);
    scope.diagnostics.push({ file: scope.source.file, ...position, message: err.message });
    return { stages: [] };
  }
  const count = scope.diagnostics.length;
  const start = text.indexOf(source);
  const at = { path, text, snippetStart: 0, snippetEnd: text.length, sourceStart: Math.max(start, 0) };
  const stages = checkExpression(source, at, scope);
  return { source: scope.diagnostics.length === count ? source : undefined, stages };
}
