/**
 * Reading a pipeline file: bytes -> YAML document -> zod-checked PipelineSpec, with every
 * problem at its line:col. Nothing here throws for bad input; problems come back as
 * diagnostics so a person sees all of them at once.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseAllDocuments, visit, type Document, type Node } from 'yaml';
import { sortDiagnostics, type Diagnostic } from './diagnostics.js';
import { issueDiagnostics } from './issues.js';
import { PipelineSource, type ValuePath } from './pipeline-source.js';
import { defaultsSchema, pipelineSchema, resourcesSchema, retrySchema, stageSchema, type PipelineSpec } from './schema.js';

/** The outcome of loading: a spec when the file is valid, and every problem found. */
export interface LoadResult {
  spec?: PipelineSpec;
  diagnostics: Diagnostic[];
  /** sha256 hex of the file's bytes. */
  digest: string;
  /** Positions of values in the file, for later checks (absent when the file could not be parsed at all). */
  source?: PipelineSource;
}

/**
 * Most alias expansions a file may make. Real pipelines use a handful; a "billion
 * laughs" file nests aliases to expand exponentially and must fail before it allocates.
 */
export const MAX_ALIAS_COUNT = 100;

const EMPTY = 'file is empty; a pipeline needs `name` and `stages`';

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function atStart(file: string, message: string): Diagnostic {
  return { file, line: 1, col: 1, message };
}

/** Loads the pipeline file at `path`. Unreadable, binary and non-UTF-8 files are reported, not thrown. */
export function loadPipelineFile(path: string): LoadResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    return { diagnostics: [atStart(path, `cannot read the pipeline file: ${reason}`)], digest: '' };
  }
  return loadPipelineBytes(bytes, path);
}

/** Loads a pipeline from raw bytes; `file` names it in messages. */
export function loadPipelineBytes(bytes: Uint8Array, file: string): LoadResult {
  const digest = sha256(bytes);
  if (bytes.includes(0)) return { diagnostics: [atStart(file, binaryMessage())], digest };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { diagnostics: [atStart(file, 'file is not valid UTF-8 text; save it as UTF-8')], digest };
  }
  return { ...loadPipelineText(text, file), digest };
}

function binaryMessage(): string {
  return 'file is binary (it contains NUL bytes), not a YAML pipeline';
}

/** Loads a pipeline from text; `file` names it in messages. */
export function loadPipelineText(text: string, file: string): LoadResult {
  const result = loadText(text, file);
  return { ...result, diagnostics: sortDiagnostics(result.diagnostics) };
}

function loadText(text: string, file: string): LoadResult {
  const digest = sha256(text);
  if (text.includes('\u0000')) return { diagnostics: [atStart(file, binaryMessage())], digest };
  // A byte order mark is not content; positions count from the first real character.
  const clean = text.replace(/^\uFEFF/, '');
  const lines = new LineCounter();
  const docs = parseAllDocuments(clean, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, merge: true });
  const doc = docs[0];
  if (!doc || isEmptyDocument(doc)) {
    const problems = doc ? syntaxProblems(file, lines, [doc]) : [];
    return { diagnostics: problems.length > 0 ? problems : [atStart(file, EMPTY)], digest };
  }
  const source = new PipelineSource(file, clean, doc, lines);
  const diagnostics = [...syntaxProblems(file, lines, docs), ...extraDocuments(file, lines, docs)];
  diagnostics.push(...duplicateKeys(doc, source), ...danglingAliases(doc, source));
  if (diagnostics.length > 0) return { diagnostics, digest, source };
  return { ...validate(doc, source), digest, source };
}

function isEmptyDocument(doc: Document): boolean {
  const contents = doc.contents;
  if (contents === null) return true;
  // A bare `---` parses as an empty plain scalar.
  return isScalar(contents) && contents.value === null && contents.range?.[0] === contents.range?.[1];
}

function syntaxProblems(file: string, lines: LineCounter, docs: Iterable<Document>): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const doc of docs) {
    // yaml reports unknown tags (`!foo`) as warnings; a pipeline has no use for them, so they are errors here.
    for (const error of [...doc.errors, ...doc.warnings]) {
      out.push({ file, ...lines.linePos(error.pos[0]), message: `YAML: ${error.message}` });
    }
  }
  return out;
}

function extraDocuments(file: string, lines: LineCounter, docs: Document[]): Diagnostic[] {
  if (docs.length < 2) return [];
  const second = docs[1]!;
  const message = `a pipeline file holds one YAML document, this one has ${docs.length}; remove the \`---\` here or split the file`;
  return [{ file, ...lines.linePos(second.range?.[0] ?? 0), message }];
}

function duplicateKeys(doc: Document, source: PipelineSource): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, Node>();
      for (const pair of map.items) {
        if (!isScalar(pair.key) || pair.key.value === '<<') continue;
        const key = String(pair.key.value);
        const first = seen.get(key);
        if (!first) {
          seen.set(key, pair.key);
          continue;
        }
        const { line } = source.positionOf(first);
        const at = source.positionOf(pair.key);
        out.push({ file: source.file, ...at, message: `duplicate key ${key} (first at line ${line}); YAML would keep only the last one` });
      }
    },
  });
  return out;
}

function danglingAliases(doc: Document, source: PipelineSource): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(doc, {
    Alias(_, alias) {
      if (!alias.resolve(doc)) {
        out.push({ file: source.file, ...source.positionOf(alias), message: `alias *${alias.source} has no anchor &${alias.source} before it` });
      }
    },
  });
  return out;
}

function firstAlias(doc: Document): Node | undefined {
  let found: Node | undefined;
  visit(doc, {
    Alias(_, alias) {
      found = alias;
      return visit.BREAK;
    },
  });
  return found;
}

function toValue(doc: Document, source: PipelineSource): { value?: unknown; diagnostics: Diagnostic[] } {
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), diagnostics: [] };
  } catch (err) {
    const message = (err as Error).message;
    if (!/alias count/i.test(message)) return { diagnostics: [source.diagnostic([], `YAML: ${message}`)] };
    const alias = firstAlias(doc);
    const at = alias ? source.positionOf(alias) : { line: 1, col: 1 };
    const text = `aliases expand to more than ${MAX_ALIAS_COUNT} copies (a "billion laughs" pattern); write the values out or use fewer aliases`;
    return { diagnostics: [{ file: source.file, ...at, message: text }] };
  }
}

function fieldsAt(path: ValuePath): readonly string[] | undefined {
  const last = path.at(-1);
  if (path.length === 0) return Object.keys(pipelineSchema.shape);
  if (path.length === 1 && last === 'defaults') return Object.keys(defaultsSchema.shape);
  if (last === 'retry') return Object.keys(retrySchema.shape);
  if (path.length === 3 && last === 'resources') return Object.keys(resourcesSchema.shape);
  if (path.length === 2 && path[0] === 'stages') return Object.keys(stageSchema.shape);
  return undefined;
}

function validate(doc: Document, source: PipelineSource): { spec?: PipelineSpec; diagnostics: Diagnostic[] } {
  const { value, diagnostics } = toValue(doc, source);
  if (diagnostics.length > 0) return { diagnostics };
  if (!isMap(doc.contents) || value === null || typeof value !== 'object' || Array.isArray(value)) {
    const found = Array.isArray(value) ? 'a list' : 'a single value';
    return { diagnostics: [source.diagnostic([], `a pipeline is a mapping with \`name\` and \`stages\`; this file holds ${found}`)] };
  }
  const parsed = pipelineSchema.safeParse(value);
  if (parsed.success) return { spec: parsed.data, diagnostics: [] };
  return { diagnostics: issueDiagnostics(parsed.error.issues, { source, input: value, fieldsAt }) };
}

