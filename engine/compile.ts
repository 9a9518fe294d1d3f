/**
 * PipelineSpec -> CompiledPipeline: the checks that need the whole pipeline (kinds,
 * dependencies, cycles, expressions, inputs against each kind's schema, `--set`), then
 * defaults applied, durations in ms, matrices expanded and stages ordered. The result is
 * plain JSON the interpreter workflow runs without reading any file.
 */
import { checkCondition, checkWith, type ExpressionScope, type StageReference } from './compile-expressions.js';
import { sortDiagnostics, suggestOrList, type Diagnostic } from './diagnostics.js';
import { parseDuration } from './duration.js';
import { findCycles, topologicalOrder } from './graph.js';
import { issueDiagnostics } from './issues.js';
import { getKind, kinds, type StageKind } from './kinds/registry.js';
import { loadPipelineFile, loadPipelineText, type LoadResult } from './load.js';
import { expandMatrix, matrixSize, matrixStageId, MAX_MATRIX_EXPANSIONS } from './matrix.js';
import { MAX_PIPELINE_BYTES, MAX_RUN_STAGES, utf8Bytes } from './limits.js';
import { applyOverrides } from './params.js';
import { PipelineSource, type Position, type ValuePath } from './pipeline-source.js';
import type { PipelineSpec, StageSpec } from './schema.js';
import type { CompiledPipeline, CompiledRetry, CompiledStage, JsonObject } from './types.js';

/** Options of compilation. */
export interface CompileOptions {
  /** The pipeline file, for messages and `source`. */
  file: string;
  /** sha256 hex of the file's bytes. */
  digest: string;
  /** `--set NAME=VALUE` overrides of params. */
  set?: Record<string, string>;
  /** Positions from loading; without them every problem is reported at 1:1. */
  source?: PipelineSource;
}

/** A compiled pipeline when there were no problems, and every problem found. */
export interface CompileResult {
  pipeline?: CompiledPipeline;
  diagnostics: Diagnostic[];
}

/** Built-in values used when neither the stage, `defaults` nor the kind says otherwise. */
export const FALLBACKS = { timeoutMs: 3_600_000, heartbeatMs: 30_000, attempts: 1, backoffMs: 10_000, maxBackoffMs: 600_000 } as const;

/** What the checks learned about one stage. */
interface StageFacts {
  key: string;
  /** Absent when `uses` names no known kind (already reported). */
  kind?: StageKind;
  /** Dependencies by key, each with where it was declared. */
  deps: Map<string, Position>;
  condition?: string;
}

function needsList(stage: StageSpec, key: string): Array<{ id: string; path: ValuePath }> {
  const base = ['stages', key, 'needs'];
  if (stage.needs === undefined) return [];
  if (typeof stage.needs === 'string') return [{ id: stage.needs, path: base }];
  return stage.needs.map((id, i) => ({ id, path: [...base, i] }));
}

function hasExpression(value: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  let current = value;
  for (const segment of path) {
    if (typeof current === 'string') break;
    if (current === null || typeof current !== 'object') return false;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return typeof current === 'string' && current.includes('${{');
}

/** `with` against the kind's schema, except values given by expressions: their type is known only at run time. */
function checkInputs(kind: StageKind, key: string, inputs: JsonObject, scope: ExpressionScope): void {
  const parsed = kind.with.safeParse(inputs);
  if (parsed.success) return;
  const issues = parsed.error.issues.filter((issue) => !hasExpression(inputs, issue.path));
  const fields = Object.keys(kind.with.shape);
  scope.diagnostics.push(
    ...issueDiagnostics(issues, { source: scope.source, input: inputs, base: ['stages', key, 'with'], fieldsAt: (p) => (p.length === 0 ? fields : undefined) }),
  );
}

function checkNeeds(stage: StageSpec, key: string, scope: ExpressionScope, deps: Map<string, Position>): void {
  for (const { id, path } of needsList(stage, key)) {
    const report = (message: string) => scope.diagnostics.push(scope.source.diagnostic(path, message));
    const ids = () => Object.keys(scope.spec.stages);
    if (id === key) report(`stage ${key} needs itself; remove ${key} from its needs`);
    else if (!Object.hasOwn(scope.spec.stages, id)) report(`stages.${key}.needs: unknown stage ${id}${suggestOrList(id, ids(), 'stages')}`);
    else if (!deps.has(id)) deps.set(id, scope.source.at(path));
  }
}

function checkRetry(stage: StageSpec, key: string, spec: PipelineSpec, scope: ExpressionScope): void {
  const backoff = stage.retry?.backoff ?? spec.defaults?.retry?.backoff;
  const maxBackoff = stage.retry?.maxBackoff ?? spec.defaults?.retry?.maxBackoff;
  if (backoff === undefined || maxBackoff === undefined || parseDuration(maxBackoff) >= parseDuration(backoff)) return;
  const path = stage.retry?.maxBackoff !== undefined ? ['stages', key, 'retry', 'maxBackoff'] : ['defaults', 'retry', 'maxBackoff'];
  scope.diagnostics.push(scope.source.diagnostic(path, `stage ${key}: retry maxBackoff ${maxBackoff} is shorter than backoff ${backoff}`));
}

function checkMatrix(stage: StageSpec, key: string, scope: ExpressionScope): void {
  if (!stage.matrix) return;
  for (const [name, values] of Object.entries(stage.matrix)) {
    const texts = values.map(String);
    const repeated = texts.findIndex((text, i) => texts.indexOf(text) !== i);
    if (repeated !== -1) scope.diagnostics.push(scope.source.diagnostic(['stages', key, 'matrix', name, repeated], `matrix ${name}: value ${texts[repeated]} appears twice`));
  }
  const size = matrixSize(stage.matrix);
  if (size > MAX_MATRIX_EXPANSIONS) {
    scope.diagnostics.push(scope.source.diagnostic(['stages', key, 'matrix'], `matrix of stage ${key} expands to ${size} stages; at most ${MAX_MATRIX_EXPANSIONS}`));
  }
}

/** Resources are reserved by the worker that runs a stage's activity; approvals and reviews run none of their own. */
function checkResources(kind: StageKind, stage: StageSpec, key: string, scope: ExpressionScope): void {
  if (stage.resources === undefined || kind.handler === 'activity') return;
  const what = kind.handler === 'approval' ? 'waits for a person' : 'holds a queue of items for people';
  scope.diagnostics.push(scope.source.diagnostic(['stages', key, 'resources'], `stage ${key}: ${kind.uses} ${what} and runs no command on a worker; remove resources`, { key: true }));
}

function addReferences(deps: Map<string, Position>, refs: StageReference[]): void {
  for (const ref of refs) if (!deps.has(ref.stage)) deps.set(ref.stage, ref.position);
}

function checkStage(key: string, stage: StageSpec, scope: ExpressionScope): StageFacts {
  const kind = getKind(stage.uses);
  const deps = new Map<string, Position>();
  checkNeeds(stage, key, scope, deps);
  addReferences(deps, checkWith(stage.with ?? {}, ['stages', key, 'with'], scope));
  let condition: string | undefined;
  if (typeof stage.if === 'boolean') condition = String(stage.if);
  else if (stage.if !== undefined) {
    const checked = checkCondition(stage.if, ['stages', key, 'if'], scope);
    condition = checked.source;
    addReferences(deps, checked.stages);
  }
  checkRetry(stage, key, scope.spec, scope);
  checkMatrix(stage, key, scope);
  if (!kind) {
    const message = `stages.${key}.uses: unknown stage kind ${stage.uses}${suggestOrList(stage.uses, kinds.keys(), 'kinds')}`;
    scope.diagnostics.push(scope.source.diagnostic(['stages', key, 'uses'], message));
  } else {
    checkInputs(kind, key, stage.with ?? {}, scope);
    checkResources(kind, stage, key, scope);
  }
  return { key, kind, deps, condition };
}

function checkCycles(facts: StageFacts[], scope: ExpressionScope): void {
  const graph = new Map(facts.map((f) => [f.key, [...f.deps.keys()]]));
  for (const cycle of findCycles(graph)) {
    const [first, second] = cycle as [string, string];
    const at = facts.find((f) => f.key === first)!.deps.get(second)!;
    scope.diagnostics.push({ file: scope.source.file, ...at, message: `dependency cycle: ${cycle.join(' -> ')}; remove one of these needs or references` });
  }
}

function ms(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text);
}

function retryOf(stage: StageSpec, spec: PipelineSpec): CompiledRetry {
  const own = stage.retry ?? {};
  const shared = spec.defaults?.retry ?? {};
  return {
    attempts: own.attempts ?? shared.attempts ?? FALLBACKS.attempts,
    backoffMs: ms(own.backoff ?? shared.backoff) ?? FALLBACKS.backoffMs,
    maxBackoffMs: ms(own.maxBackoff ?? shared.maxBackoff) ?? FALLBACKS.maxBackoffMs,
  };
}

/** The compiled stage of one key (one per matrix combination), before its needs are filled in. */
function compileStage(facts: StageFacts, spec: PipelineSpec): CompiledStage[] {
  const stage = spec.stages[facts.key]!;
  const kind = facts.kind!;
  const base: CompiledStage = {
    id: facts.key,
    key: facts.key,
    uses: stage.uses,
    kindVersion: kind.version,
    handler: kind.handler,
    activity: kind.handler === 'approval' ? '' : kind.uses,
    needs: [],
    with: (stage.with ?? {}) as JsonObject,
    shellFields: [...(kind.shellFields ?? [])],
    queue: stage.queue ?? kind.queueFor?.(stage.with ?? {}) ?? spec.defaults?.queue ?? kind.defaultQueue,
    timeoutMs: ms(stage.timeout ?? spec.defaults?.timeout) ?? kind.defaultTimeoutMs ?? FALLBACKS.timeoutMs,
    heartbeatMs: ms(stage.heartbeat ?? spec.defaults?.heartbeat) ?? FALLBACKS.heartbeatMs,
    retry: retryOf(stage, spec),
    cache: stage.cache ?? kind.cacheByDefault,
    ...(stage.resources?.gpus ? { resources: { gpus: stage.resources.gpus } } : {}),
    ...(facts.condition === undefined ? {} : { if: facts.condition }),
  };
  if (!stage.matrix) return [base];
  return expandMatrix(stage.matrix).map((matrix) => ({ ...base, id: matrixStageId(facts.key, matrix), matrix }));
}

function assemble(facts: StageFacts[], spec: PipelineSpec, params: JsonObject, opts: CompileOptions): CompiledPipeline {
  const byKey = new Map(facts.map((f) => [f.key, f]));
  const order = topologicalOrder(new Map(facts.map((f) => [f.key, [...f.deps.keys()]])));
  const rank = new Map(order.map((key, i) => [key, i]));
  const idsOf = new Map<string, string[]>();
  const stages: Record<string, CompiledStage> = {};
  for (const key of order) {
    const f = byKey.get(key)!;
    const deps = [...f.deps.keys()].sort((a, b) => rank.get(a)! - rank.get(b)!);
    const needs = deps.flatMap((k) => idsOf.get(k)!);
    const compiled = compileStage(f, spec).map((s) => ({ ...s, needs }));
    idsOf.set(key, compiled.map((s) => s.id));
    for (const s of compiled) stages[s.id] = s;
  }
  return {
    formatVersion: 1,
    name: spec.name,
    source: opts.file,
    sourceDigest: opts.digest,
    params,
    order: order.flatMap((key) => idsOf.get(key)!),
    stages,
    maxParallel: spec.concurrency,
  };
}

/** Checks and compiles a validated spec; the pipeline is present only when there are no problems. */
export function compilePipeline(spec: PipelineSpec, opts: CompileOptions): CompileResult {
  const source = opts.source ?? new PipelineSource(opts.file, '');
  const scope: ExpressionScope = { spec, source, stageKey: '', diagnostics: [] };
  const { params, problems } = applyOverrides((spec.params ?? {}) as JsonObject, opts.set ?? {});
  for (const problem of problems) {
    const path = spec.params && Object.hasOwn(spec.params, problem.name) ? ['params', problem.name] : ['params'];
    scope.diagnostics.push(source.diagnostic(path, problem.message, { key: true }));
  }
  const facts = Object.entries(spec.stages).map(([key, stage]) => checkStage(key, stage, { ...scope, stageKey: key }));
  checkCycles(facts, scope);
  checkRunSize(spec, scope);
  if (scope.diagnostics.length > 0) return { diagnostics: sortDiagnostics(scope.diagnostics) };
  const pipeline = assemble(facts, spec, params, opts);
  const bytes = utf8Bytes(JSON.stringify(pipeline));
  if (bytes > MAX_PIPELINE_BYTES) {
    const message = `the compiled pipeline is ${kb(bytes)}; one run holds at most ${kb(MAX_PIPELINE_BYTES)} (it travels in Temporal payloads of at most 2 MB, with the state of every stage); ` +
      'move long inline values (scripts, lists, templates) into files the stages read, or split the pipeline into several';
    return { diagnostics: [source.diagnostic(['stages'], message, { key: true })] };
  }
  return { pipeline, diagnostics: [] };
}

/** Stages after matrix expansion: one run holds MAX_RUN_STAGES (see engine/limits.ts). */
function checkRunSize(spec: PipelineSpec, scope: ExpressionScope): void {
  const total = Object.values(spec.stages).reduce((n, stage) => n + (stage.matrix ? matrixSize(stage.matrix) : 1), 0);
  if (total <= MAX_RUN_STAGES) return;
  scope.diagnostics.push(scope.source.diagnostic(['stages'], `the pipeline expands to ${total.toLocaleString('en-US')} stages; one run holds at most ${MAX_RUN_STAGES.toLocaleString('en-US')} ` +
    '(its pipeline and the state of every stage travel in one Temporal payload of at most 2 MB each time it continues as new); split it into several pipelines, or use fewer matrix values', { key: true }));
}

const kb = (bytes: number) => `${Math.round(bytes / 1024).toLocaleString('en-US')} KB`;

function finish(loaded: LoadResult, file: string, set: Record<string, string> | undefined): CompileResult {
  if (!loaded.spec) return { diagnostics: sortDiagnostics(loaded.diagnostics) };
  return compilePipeline(loaded.spec, { file, digest: loaded.digest, set, source: loaded.source });
}

/** Loads and compiles pipeline text: what tests and embedders call. Problems are sorted by position. */
export function checkPipelineText(text: string, file: string, opts: { set?: Record<string, string> } = {}): CompileResult {
  return finish(loadPipelineText(text, file), file, opts.set);
}

/** Loads and compiles a pipeline file: what `twinflow validate` and `run` call. Problems are sorted by position. */
export function checkPipelineFile(path: string, opts: { set?: Record<string, string> } = {}): CompileResult {
  return finish(loadPipelineFile(path), path, opts.set);
}

