/**
 * Matrix fan-out: one compiled stage per combination of matrix values, as in GitHub
 * Actions. The id names the combination so status lines and logs say which one failed.
 */
import type { JsonObject } from './types.js';

/** A value a matrix can range over. */
export type MatrixValue = string | number | boolean;

/** Most copies one matrix stage may expand to: each is a stage in the run's history. */
export const MAX_MATRIX_EXPANSIONS = 1000;

/** Number of combinations, without building them. */
export function matrixSize(matrix: Record<string, readonly MatrixValue[]>): number {
  return Object.values(matrix).reduce((product, values) => product * values.length, 1);
}

/** Every combination, the first name varying slowest, values in the order written. */
export function expandMatrix(matrix: Record<string, readonly MatrixValue[]>): JsonObject[] {
  let combinations: JsonObject[] = [{}];
  for (const [name, values] of Object.entries(matrix)) {
    combinations = combinations.flatMap((partial) => values.map((value) => ({ ...partial, [name]: value })));
  }
  return combinations;
}

/** `key[name=value,name2=value2]`. */
export function matrixStageId(key: string, combination: JsonObject): string {
  const parts = Object.entries(combination).map(([name, value]) => `${name}=${String(value)}`);
  return `${key}[${parts.join(',')}]`;
}
