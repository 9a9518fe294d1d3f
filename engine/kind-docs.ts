import type { z } from 'zod';
import type { KindFamily, StageKind } from './kinds/kind.js';

/**
 * The README's kind tables, written from the registry (scripts/kind-tables.ts puts them
 * between `<!-- kinds:ID -->` markers; `npm run check` fails when they are stale), so
 * what the README says a kind takes is what its schema takes.
 */
export function kindTable(family: KindFamily): string {
  const rows = family.kinds.map((kind) => `| \`${kind.uses}\` | ${cell(kind.description)} | ${inputsOf(kind)} | ${outputsOf(kind)} | ${cachedOf(kind)} |`);
  return ['| kind | what it does | inputs (`with`), defaults in brackets | outputs | cached by default |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** Replaces each family's table between its markers; a README without a family's markers is left as it is there. */
export function writeKindTables(readme: string, families: readonly KindFamily[]): string {
  let out = readme;
  for (const family of families) {
    const open = `<!-- kinds:${family.id} -->`;
    const close = `<!-- /kinds:${family.id} -->`;
    const a = out.indexOf(open);
    const b = out.indexOf(close);
    if (a < 0 || b < a) continue;
    out = `${out.slice(0, a + open.length)}\n${kindTable(family)}\n${out.slice(b)}`;
  }
  return out;
}

/** Families whose markers the README lacks (each must have a table). */
export function missingTables(readme: string, families: readonly KindFamily[]): string[] {
  return families.filter((f) => !readme.includes(`<!-- kinds:${f.id} -->`) || !readme.includes(`<!-- /kinds:${f.id} -->`)).map((f) => f.id);
}

function inputsOf(kind: StageKind): string {
  return Object.entries(kind.with.shape).map(([name, schema]) => {
    const d = defaultOf(schema as z.ZodType);
    return `\`${name}\`${d === undefined ? '' : ` [${d}]`}`;
  }).join(', ') || '-';
}

function outputsOf(kind: StageKind): string {
  const def = (kind.outputs as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
  if (def.type === 'object' && def.shape) return Object.keys(def.shape).map((n) => `\`${n}\``).join(', ');
  return 'a JSON object (see what it does)';
}

function cachedOf(kind: StageKind): string {
  if (kind.handler === 'approval') return 'never';
  return kind.cacheByDefault ? 'yes' : 'no (`cache: true` to opt in)';
}

/** A field's default as the README shows it, looking through optional wrappers. */
function defaultOf(schema: z.ZodType): string | undefined {
  let def = (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
  while (def.type === 'optional' || def.type === 'nullable') def = def.innerType!._zod.def;
  if (def.type !== 'default') return undefined;
  const value = def.defaultValue;
  if (value === undefined || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

interface ZodDef {
  type: string;
  innerType?: { _zod: { def: ZodDef } };
  defaultValue?: unknown;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
