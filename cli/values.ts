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
 * A command-line value for a field with a known schema: the YAML reading of the text when
 * the field takes it (numbers, booleans, JSON objects), else the text as a string.
 */
export function coerceValue(raw: string, schema?: z.ZodType): Json {
  let parsed: Json = raw;
  try {
    parsed = parseYaml(raw) as Json;
  } catch {
    return raw;
  }
  if (!schema) return parsed ?? raw;
  if (schema.safeParse(parsed).success) return parsed;
  return raw;
}
