import fs from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/program.js';

/**
 * Every flag of every command reaches that command's action with the value given, and
 * every flag the README's command list documents exists. (`review serve --port` once
 * went to the parent `review` command and was silently ignored.)
 */

class Reached extends Error {
  constructor(readonly command: Command) {
    super('reached');
  }
}

function leaves(cmd: Command, trail: string[] = []): Array<{ trail: string[]; cmd: Command }> {
  const here = (cmd as unknown as { _actionHandler?: unknown })._actionHandler ? [{ trail, cmd }] : [];
  return [...here, ...cmd.commands.flatMap((c) => leaves(c, [...trail, c.name()]))];
}

/** Runs argv through the real program up to the action, and returns the options the action would get. */
async function optsFor(argv: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram();
  program.hook('preAction', (_root, action) => {
    throw new Reached(action);
  });
  const silent = { writeOut: () => undefined, writeErr: () => undefined };
  for (const c of [program, ...program.commands.flatMap((c) => [c, ...c.commands])]) c.configureOutput(silent);
  try {
    await program.parseAsync(['node', 'twinflow', ...argv]);
  } catch (err) {
    if (err instanceof Reached) return err.command.opts();
    throw err;
  }
  throw new Error(`no action ran for ${argv.join(' ')}`);
}

const sample = (option: Option) => (/port|limit|batch|threshold/.test(option.long ?? '') ? '7301' : 'v1');

function expected(option: Option): unknown {
  if (option.negate) return false;
  if (!option.required && !option.optional) return true;
  const value = sample(option);
  const parse = (option as unknown as { parseArg?: (v: string, prev: unknown) => unknown }).parseArg;
  return parse ? parse(value, Array.isArray(option.defaultValue) ? [] : undefined) : value;
}

/** Required arguments and the other mandatory options (`review decide --file`), with sample values. */
const argsFor = (cmd: Command, except: Option) => [
  ...cmd.registeredArguments.filter((a) => a.required).map(() => 'x'),
  ...cmd.options.filter((o) => o.mandatory && o !== except).flatMap((o) => [o.long!, sample(o)]),
];
const program = buildProgram();
const cases = leaves(program).flatMap(({ trail, cmd }) =>
  cmd.options.filter((o) => !o.hidden && o.long !== '--help').map((option) => ({ trail, cmd, option, name: `${[...trail, option.long].join(' ')}` })));

describe('command-line flags', () => {
  it.each(cases)('$name reaches its command', async ({ trail, cmd, option }) => {
    const argv = [...trail, ...argsFor(cmd, option), option.long!, ...(option.required || option.optional ? [sample(option)] : [])];
    expect((await optsFor(argv))[option.attributeName()]).toEqual(expected(option));
  });

  it('documents only flags that exist, on the commands that have them', () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const block = readme.slice(readme.indexOf('## Commands'));
    const lines = block.slice(block.indexOf('```'), block.indexOf('```', block.indexOf('```') + 3)).split('\n').filter((l) => l.startsWith('npx twinflow '));
    expect(lines.length).toBeGreaterThan(15);
    for (const line of lines) {
      const words = line.replace(/#.*$/, '').split(/\s+/).slice(2);
      const trail: string[] = [];
      let cmd: Command = program;
      for (const w of words) {
        const sub = cmd.commands.find((c) => c.name() === w);
        if (!sub) break;
        cmd = sub;
        trail.push(w);
      }
      const documented = [...line.replace(/#.*$/, '').matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);
      const known = new Set(cmd.options.map((o) => o.long));
      for (const flag of documented) expect(known.has(flag), `${trail.join(' ')} ${flag} (README: ${line})`).toBe(true);
    }
  });
});
