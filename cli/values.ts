import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import type { Json } from '../engine/types.js';
import { CliError } from './errors.js';

/** Collects repeated `--set k=v` / `--with k=v` options (commander's accumulator). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `k=v` strings to a map; the value may itself contain `=`. */
export function parseAssignments(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`${flag} ${item}: expected KEY=VALUE`, `for example ${flag} seed=1`, 2);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/**
 * A command-line value, read as a YAML scalar the way a pipeline file reads the same text
 * (`1001` is a number, `true` a boolean, `{a: 1}` an object). Only when the field's schema
 * takes the text but not its YAML reading (`version=1.10` for a string field) is the text
 * kept as it is; otherwise the YAML value goes on, so a wrong value is reported for what
 * it is (`pairs=1001`: "at most 1000"), not as "expected number, received string".
 */
export function coerceValue(raw: string, schema?: z.ZodType): Json {
  let parsed: Json;
  try {
    parsed = (parseYaml(raw) as Json) ?? raw;
  } catch {
    return raw;
  }
  if (!schema || schema.safeParse(parsed).success) return parsed;
  return schema.safeParse(raw).success ? raw : parsed;
}
