/**
 * Where things are in a parsed pipeline file. Validation and compilation work on plain
 * values; this maps a value's path (`['stages', 'train', 'timeout']`) back to the YAML
 * node it came from so every message can say `line:col`.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Diagnostic } from './diagnostics.js';

/** A path into the pipeline value: mapping keys and list indexes. */
export type ValuePath = ReadonlyArray<string | number>;

/** 1-based line and column. */
export interface Position {
  line: number;
  col: number;
}

interface Found {
  /** The deepest node reached, its pair's key, and whether the whole path was found. */
  node?: Node;
  key?: Node;
  complete: boolean;
}

/** A parsed file with its positions. Paths that do not exist fall back to the nearest ancestor that does. */
export class PipelineSource {
  private readonly pairIndex = new WeakMap<YAMLMap, Map<string, Pair<unknown, unknown>>>();

  constructor(
    readonly file: string,
    readonly text: string,
    private readonly doc?: Document,
    private readonly lines?: LineCounter,
  ) {}

  /** Position of the value at `path`, or of its key with `key: true`. */
  at(path: ValuePath, options: { key?: boolean } = {}): Position {
    const found = this.find(path);
    const node = options.key && found.complete && found.key ? found.key : found.node;
    return this.position(node?.range?.[0]);
  }

  /** A diagnostic at the value (or key) at `path`. */
  diagnostic(path: ValuePath, message: string, options: { key?: boolean } = {}): Diagnostic {
    return { file: this.file, ...this.at(path, options), message };
  }

  /**
   * Position of character `offset` of the string at `path`, given that `snippet` (text
   * of the value containing that offset, starting at `snippetStart`) appears verbatim in
   * the source. Escapes, folding and block indentation make value offsets differ from
   * source offsets, so the snippet is looked up in the node's source text instead; when
   * it is not there verbatim, the position of the whole value is the best answer.
   */
  inString(path: ValuePath, value: string, snippetStart: number, snippetEnd: number, offset: number): Position {
    const found = this.find(path);
    const range = found.complete ? found.node?.range : undefined;
    if (!range) return this.position(found.node?.range?.[0]);
    const snippet = value.slice(snippetStart, snippetEnd);
    const raw = this.text.slice(range[0], range[1]);
    let occurrence = countOccurrences(value.slice(0, snippetStart), snippet);
    let at = raw.indexOf(snippet);
    while (at !== -1 && occurrence > 0) {
      at = raw.indexOf(snippet, at + 1);
      occurrence--;
    }
    return this.position(at === -1 ? range[0] : range[0] + at + (offset - snippetStart));
  }

  /** Position where a YAML node starts. */
  positionOf(node: Node): Position {
    return this.position(node.range?.[0]);
  }

  private position(offset: number | undefined): Position {
    if (offset === undefined || !this.lines) return { line: 1, col: 1 };
    return this.lines.linePos(offset);
  }

  private find(path: ValuePath): Found {
    let node = this.doc?.contents ?? undefined;
    let key: Node | undefined;
    for (const segment of path) {
      const next = node ? this.child(node, segment) : undefined;
      if (!next) return { node, key, complete: false };
      node = next.node;
      key = next.key;
    }
    return { node: node ?? undefined, key, complete: true };
  }

  /** Pairs of a mapping by key, built once per mapping: big `stages:` maps are searched once per reference. */
  private pairsOf(map: YAMLMap): Map<string, Pair<unknown, unknown>> {
    let pairs = this.pairIndex.get(map);
    if (!pairs) {
      pairs = new Map();
      for (const item of map.items as Array<Pair<unknown, unknown>>) {
        // The first occurrence wins, like the duplicate-key message that points at the second.
        if (isScalar(item.key) && !pairs.has(String(item.key.value))) pairs.set(String(item.key.value), item);
      }
      this.pairIndex.set(map, pairs);
    }
    return pairs;
  }

  private child(parent: Node, segment: string | number): { node?: Node; key?: Node } | undefined {
    const target = isAlias(parent) && this.doc ? parent.resolve(this.doc) : parent;
    if (isMap(target)) {
      const pair = this.pairsOf(target).get(String(segment));
      if (!pair) return undefined;
      // A key with no value (`a:`) has no value node; point at the key instead.
      return { node: (pair.value as Node | null) ?? (pair.key as Node), key: pair.key as Node };
    }
    if (isSeq(target) && typeof segment === 'number') {
      const item = target.items[segment] as Node | undefined;
      return item ? { node: item } : undefined;
    }
    return undefined;
  }
}

function countOccurrences(text: string, snippet: string): number {
  if (snippet === '') return 0;
  let count = 0;
  for (let at = text.indexOf(snippet); at !== -1; at = text.indexOf(snippet, at + 1)) count++;
  return count;
}
