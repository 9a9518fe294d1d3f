/**
 * Parser for the inside of `${{ ... }}`: a small recursive-descent grammar in the
 * GitHub Actions style. Pure code with no Node imports: the workflow sandbox loads it.
 *
 *   or      := and ('||' and)*
 *   and     := compare ('&&' compare)*
 *   compare := unary (('==' | '!=' | '<' | '<=' | '>' | '>=') unary)*
 *   unary   := '!' unary | primary
 *   primary := 'string' | number | true | false | null | '(' or ')' | reference
 */
import type { Json } from './types.js';

/** Thrown for an expression that cannot be parsed or evaluated. `offset` is 0-based in the text that was parsed. */
export class ExpressionError extends Error {
  readonly offset?: number;

  constructor(message: string, offset?: number) {
    super(message);
    this.name = 'ExpressionError';
    this.offset = offset;
  }
}

/** Binary operators, by precedence from low to high: `||`, `&&`, comparisons. */
export type BinaryOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';

/** A parsed expression. `offset` is where the node starts in the source, for messages. */
export type Expr =
  | { type: 'literal'; value: Json; offset: number }
  | { type: 'ref'; root: 'params' | 'matrix' | 'stages'; path: string[]; offset: number }
  | { type: 'not'; operand: Expr; offset: number }
  | { type: 'binary'; op: BinaryOp; left: Expr; right: Expr; offset: number };

interface Token {
  kind: 'name' | 'number' | 'string' | 'op' | 'end';
  text: string;
  offset: number;
  value?: Json;
}

const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '.'];
const ROOTS = ['params', 'matrix', 'stages'] as const;
const SHAPES = 'params.NAME, matrix.NAME or stages.ID.outputs.NAME';

function readString(source: string, start: number): Token {
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= source.length) throw new ExpressionError('unterminated string: close it with a single quote', start);
    if (source[i] === "'") {
      if (source[i + 1] !== "'") break;
      i++; // '' is an escaped quote, as in GitHub Actions
    }
    value += source[i];
    i++;
  }
  return { kind: 'string', text: source.slice(start, i + 1), offset: start, value };
}

function readToken(source: string, i: number, afterDot: boolean): Token {
  const rest = source.slice(i);
  // After a dot any segment is a name, so stage ids and output names may start with a digit.
  const word = (afterDot ? /^[A-Za-z0-9_][A-Za-z0-9_-]*/ : /^[A-Za-z_][A-Za-z0-9_-]*/).exec(rest);
  if (word) return { kind: 'name', text: word[0], offset: i };
  const number = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(rest);
  if (number) return { kind: 'number', text: number[0], offset: i, value: Number(number[0]) };
  if (rest[0] === "'") return readString(source, i);
  if (rest[0] === '"') throw new ExpressionError("strings in expressions use single quotes: 'text'", i);
  const op = OPERATORS.find((candidate) => rest.startsWith(candidate));
  if (op) return { kind: 'op', text: op, offset: i };
  if (rest[0] === '=') throw new ExpressionError('use == to compare', i);
  throw new ExpressionError(`unexpected character ${JSON.stringify(rest[0])}`, i);
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    if (/\s/.test(source[i]!)) {
      i++;
      continue;
    }
    const token = readToken(source, i, tokens.at(-1)?.text === '.');
    tokens.push(token);
    i += token.text.length;
  }
  tokens.push({ kind: 'end', text: '', offset: source.length });
  return tokens;
}

class Parser {
  private index = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): Expr {
    if (this.peek().kind === 'end') throw new ExpressionError('empty expression', 0);
    const expr = this.binary(0);
    const next = this.peek();
    if (next.kind !== 'end') throw new ExpressionError(`unexpected ${describe(next)} after the expression`, next.offset);
    return expr;
  }

  private static readonly LEVELS: BinaryOp[][] = [['||'], ['&&'], ['==', '!=', '<', '<=', '>', '>=']];

  /** Left-associative binary operators, lowest precedence first. */
  private binary(level: number): Expr {
    const ops = Parser.LEVELS[level];
    if (!ops) return this.unary();
    let left = this.binary(level + 1);
    while (ops.includes(this.peek().text as BinaryOp) && this.peek().kind === 'op') {
      const op = this.next().text as BinaryOp;
      const right = this.binary(level + 1);
      left = { type: 'binary', op, left, right, offset: left.offset };
    }
    return left;
  }

  private unary(): Expr {
    const token = this.peek();
    if (token.kind === 'op' && token.text === '!') {
      this.next();
      return { type: 'not', operand: this.unary(), offset: token.offset };
    }
    return this.primary();
  }

  private primary(): Expr {
    const token = this.next();
    if (token.kind === 'string' || token.kind === 'number') return { type: 'literal', value: token.value!, offset: token.offset };
    if (token.kind === 'op' && token.text === '(') {
      const inner = this.binary(0);
      const close = this.next();
      if (close.text !== ')') throw new ExpressionError(`expected ) to close the ( at column ${token.offset + 1}`, close.offset);
      return inner;
    }
    if (token.kind === 'name') {
      const literal: Record<string, Json> = { true: true, false: false, null: null };
      if (token.text in literal) return { type: 'literal', value: literal[token.text]!, offset: token.offset };
      return this.reference(token);
    }
    throw new ExpressionError(`expected a value, found ${describe(token)}`, token.offset);
  }

  private reference(first: Token): Expr {
    if (this.peek().text === '(') throw new ExpressionError(`functions such as ${first.text}() are not supported`, first.offset);
    const root = ROOTS.find((r) => r === first.text);
    if (!root) throw new ExpressionError(`unknown name ${first.text}; expressions read ${SHAPES}`, first.offset);
    const path: string[] = [];
    while (this.peek().kind === 'op' && this.peek().text === '.') {
      this.next();
      const segment = this.next();
      if (segment.kind !== 'name') throw new ExpressionError(`expected a name after the dot, found ${describe(segment)}`, segment.offset);
      path.push(segment.text);
    }
    checkShape(root, path, first.offset);
    return { type: 'ref', root, path, offset: first.offset };
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.tokens[this.index]!;
    if (token.kind !== 'end') this.index++;
    return token;
  }
}

function checkShape(root: (typeof ROOTS)[number], path: string[], offset: number): void {
  if (root !== 'stages' && path.length === 0) throw new ExpressionError(`${root} needs a name: ${root}.NAME`, offset);
  if (root === 'stages' && (path.length < 2 || path[1] !== 'outputs')) {
    const id = path[0] ?? 'ID';
    throw new ExpressionError(`a stage is read as stages.${id}.outputs.NAME`, offset);
  }
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'the end of the expression' : `\`${token.text}\``;
}

/** Parses the inside of `${{ }}`; throws ExpressionError with the 0-based offset of the problem in `source`. */
export function parseExpression(source: string): Expr {
  return new Parser(tokenize(source)).parse();
}

/** Every reference in an expression tree, in source order. */
export function referencesOf(expr: Expr): Array<Extract<Expr, { type: 'ref' }>> {
  switch (expr.type) {
    case 'literal':
      return [];
    case 'ref':
      return [expr];
    case 'not':
      return referencesOf(expr.operand);
    case 'binary':
      return [...referencesOf(expr.left), ...referencesOf(expr.right)];
  }
}
