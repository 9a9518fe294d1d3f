import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  conditionSource,
  evaluateCondition,
  ExpressionError,
  findExpressions,
  parseExpression,
  references,
  resolveInputs,
  resolveKnown,
  type ExprContext,
} from '../../engine/expressions.js';

const ctx: ExprContext = {
  params: { n: 3, name: 'shoes', flag: false, cfg: { lr: 0.1, tags: ['a'] }, empty: '', off: 'false' },
  matrix: { size: 7 },
  stages: {
    source: { outputs: { count: 12, title: 'Red shoes', images: { uri: 'file:///a', sha256: 'x' } } },
    skipped: { skipped: true },
  },
};

describe('findExpressions', () => {
  it('finds each ${{ }} with its offsets and trimmed source', () => {
    const text = 'a ${{ params.n }} b ${{matrix.size}}';
    expect(findExpressions(text)).toEqual([
      { source: 'params.n', start: 2, end: 17, sourceStart: 6 },
      { source: 'matrix.size', start: 20, end: 36, sourceStart: 23 },
    ]);
  });

  it('does not end an expression at }} inside a quoted string', () => {
    expect(findExpressions("${{ params.name == '}}' }}")[0]!.source).toBe("params.name == '}}'");
  });

  it('reports an unterminated ${{ with its offset', () => {
    try {
      findExpressions('echo ${{ params.n');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as ExpressionError).offset).toBe(5);
      expect((err as Error).message).toMatch(/unterminated/);
    }
  });
});

describe('parseExpression', () => {
  it('gives && a higher precedence than ||', () => {
    const expr = parseExpression('true || false && false');
    expect(expr).toMatchObject({ type: 'binary', op: '||', right: { type: 'binary', op: '&&' } });
  });

  it.each([
    ['params.', 7, /expected a name after the dot/],
    ['params.n ==', 11, /expected a value/],
    ['(params.n', 9, /expected \) to close/],
    ['env.HOME', 0, /unknown name env; expressions read params.NAME, matrix.NAME or stages.ID.outputs.NAME/],
    ['stages.a.result', 0, /stages.a.outputs.NAME/],
    ['contains(params.n)', 0, /functions such as contains\(\) are not supported/],
    ['params.n = 3', 9, /use == to compare/],
    ['params.n == "x"', 12, /single quotes/],
    ["'open", 0, /unterminated string/],
    ['params.n params.m', 9, /unexpected `params` after the expression/],
    ['', 0, /empty expression/],
  ])('rejects %j with an error at offset %d', (source, offset, message) => {
    try {
      parseExpression(source);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as ExpressionError).offset).toBe(offset);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('accepts stage ids and output names with dashes and leading digits', () => {
    expect(parseExpression('stages.approve-release.outputs.2nd-try')).toMatchObject({ type: 'ref', path: ['approve-release', 'outputs', '2nd-try'] });
  });
});

describe('references', () => {
  it('collects every reference in nested strings, once each', () => {
    const refs = references({
      run: 'x ${{ params.n }} ${{ stages.source.outputs.count }} ${{ params.n }}',
      deep: [{ v: '${{ matrix.size == 7 && stages.b.outputs }}' }],
      n: 3,
    });
    expect(refs).toEqual([
      { kind: 'params', name: 'n' },
      { kind: 'stages', name: 'source', output: 'count' },
      { kind: 'matrix', name: 'size' },
      { kind: 'stages', name: 'b' },
    ]);
  });

  it('skips expressions that do not parse instead of throwing', () => {
    expect(references(['${{ params.', '${{ env.X }}', '${{ params.ok }}'])).toEqual([{ kind: 'params', name: 'ok' }]);
  });
});

describe('resolveInputs', () => {
  it('keeps the JSON type of a string that is exactly one expression', () => {
    const { with: out } = resolveInputs(
      { n: '${{ params.n }}', cfg: '${{ params.cfg }}', flag: '${{ params.flag }}', lr: '${{ params.cfg.lr }}', m: '${{ matrix.size }}' },
      ctx,
      [],
    );
    expect(out).toEqual({ n: 3, cfg: { lr: 0.1, tags: ['a'] }, flag: false, lr: 0.1, m: 7 });
  });

  it('interpolates text around expressions, writing non-strings as JSON', () => {
    const { with: out } = resolveInputs({ msg: 'n=${{ params.n }} cfg=${{ params.cfg }} t=${{ stages.source.outputs.title }}' }, ctx, []);
    expect(out.msg).toBe('n=3 cfg={"lr":0.1,"tags":["a"]} t=Red shoes');
  });

  it('resolves expressions inside nested lists and objects but leaves keys and other values alone', () => {
    const { with: out } = resolveInputs({ list: ['${{ params.n }}', { k: '${{ params.name }}' }, 4, null] }, ctx, []);
    expect(out.list).toEqual([3, { k: 'shoes' }, 4, null]);
  });

  it('puts shell-field expressions in variables, never in the script text', () => {
    const resolved = resolveInputs(
      { run: 'echo ${{ stages.source.outputs.title }} "${{ params.n }}" ${{ params.cfg }}', cwd: '${{ params.name }}' },
      ctx,
      ['run'],
    );
    expect(resolved.with.run).toBe('echo "${TWINFLOW_EXPR_0}" ""${TWINFLOW_EXPR_1}"" "${TWINFLOW_EXPR_2}"');
    expect(resolved.shellEnv).toEqual({ TWINFLOW_EXPR_0: 'Red shoes', TWINFLOW_EXPR_1: '3', TWINFLOW_EXPR_2: '{"lr":0.1,"tags":["a"]}' });
    expect(resolved.with.cwd).toBe('shoes');
  });

  it('hands an injection attempt to bash as inert text', () => {
    const title = '$(echo PWNED); "`echo PWNED`" \' && echo PWNED #';
    const resolved = resolveInputs({ run: 'printf %s ${{ stages.source.outputs.title }}' }, { params: {}, stages: { source: { outputs: { title } } } }, ['run']);
    expect(resolved.with.run).not.toContain('PWNED');
    const out = execFileSync('bash', ['-c', String(resolved.with.run)], { env: { ...process.env, ...resolved.shellEnv }, encoding: 'utf8' });
    expect(out).toBe(title);
  });

  it('names the stage and lists its outputs when an output is missing', () => {
    expect(() => resolveInputs({ x: '${{ stages.source.outputs.cnt }}' }, ctx, [])).toThrow(
      /stages.source.outputs.cnt }}: stage source has no output cnt; its outputs are: count, title, images/,
    );
  });

  it('refuses to read outputs of a skipped stage', () => {
    expect(() => resolveInputs({ x: 'a ${{ stages.skipped.outputs.y }}' }, ctx, [])).toThrow(/stage skipped was skipped/);
    expect(() => resolveInputs({ run: '${{ stages.skipped.outputs.y }}' }, ctx, ['run'])).toThrow(ExpressionError);
  });

  it('refuses stages that have not run, unknown params and deep fields that do not exist', () => {
    expect(() => resolveInputs({ x: '${{ stages.later.outputs.y }}' }, ctx, [])).toThrow(/stage later has no outputs yet/);
    expect(() => resolveInputs({ x: '${{ params.nope }}' }, ctx, [])).toThrow(/params.nope is not defined; known: n, name/);
    expect(() => resolveInputs({ x: '${{ params.cfg.momentum }}' }, ctx, [])).toThrow(/params.cfg has no field momentum/);
    expect(() => resolveInputs({ x: '${{ matrix.size }}' }, { params: {}, stages: {} }, [])).toThrow(/this stage has no matrix/);
  });
});

describe('resolveKnown', () => {
  it('resolves params and known outputs and leaves outputs of stages that have not run as written', () => {
    const template = {
      all: '${{ params.n }}',
      mixed: 'n=${{ params.n }} later=${{ stages.train.outputs.model }} title=${{ stages.source.outputs.title }}',
      nested: { list: ['${{ matrix.size }}', '${{ stages.train.outputs.loss }}'] },
    };
    expect(resolveKnown(template, ctx)).toEqual({
      all: 3,
      mixed: 'n=3 later=${{ stages.train.outputs.model }} title=Red shoes',
      nested: { list: [7, '${{ stages.train.outputs.loss }}'] },
    });
  });
});

describe('evaluateCondition', () => {
  it.each([
    ['${{ params.n == 3 }}', true],
    ['params.n == 3', true],
    ["params.name != 'shoes'", false],
    ['!params.flag', true],
    ['params.flag || params.n', true],
    ['params.empty', false],
    ['params.off', false],
    ['0', false],
    ['null', false],
    ["'text'", true],
    ['params.cfg', true],
    ['true || false && false', true],
    ['(true || false) && false', false],
    ['!true == false', true],
    ['!(params.n == 3)', false],
    ['stages.source.outputs.count > 10 && matrix.size <= 7', true],
    ["params.n < 'x'", false],
    ['params.cfg == params.cfg', true],
    ["params.name == 'it''s'", false],
  ])('evaluates %s to %s', (source, expected) => {
    expect(evaluateCondition(source, ctx)).toBe(expected);
  });

  it('refuses text mixed with ${{ }}', () => {
    expect(() => conditionSource('x ${{ params.n }}')).toThrow(/a condition is one expression/);
  });

  it('strips ${{ }} from a wrapped condition', () => {
    expect(conditionSource('  ${{ params.n == 3 }} ')).toBe('params.n == 3');
  });
});
