/**
 * Durations as people write them in pipelines (`90s`, `48h`, `1h30m`), in milliseconds
 * inside the engine. A bare number is refused on purpose: `timeout: 30` could mean
 * seconds or minutes, and guessing wrong kills a two-day training run.
 */

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;

/** What a valid duration looks like, for error messages. */
export const DURATION_HINT = 'write a number with a unit: 500ms, 90s, 10m, 48h, 2d, or combined like 1h30m';

/** The syntax of a duration, for the JSON Schema; `parseDuration` also refuses zero. */
export const DURATION_PATTERN = '^\\s*(\\d+(\\.\\d+)?(ms|s|m|h|d)\\s*)+$';

const PART = /\s*(\d+(?:\.\d+)?)(ms|s|m|h|d)\s*/y;

/** Thrown for text that is not a positive duration; the message says what to write instead. */
export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}

/**
 * Milliseconds in `text`: one or more `<number><unit>` parts with units ms, s, m, h, d,
 * e.g. `500ms`, `90s`, `1h30m`, `1.5h`. Throws DurationError for zero, negative, bare
 * numbers and anything else.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') throw new DurationError(`duration is empty; ${DURATION_HINT}`);
  if (/^-/.test(trimmed)) throw new DurationError(`duration ${JSON.stringify(text)} is negative; ${DURATION_HINT}`);
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    throw new DurationError(`duration ${JSON.stringify(text)} has no unit; ${DURATION_HINT}`);
  }
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const match = PART.exec(trimmed);
    if (!match) throw new DurationError(`${JSON.stringify(text)} is not a duration; ${DURATION_HINT}`);
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
  }
  const ms = Math.round(total);
  if (ms <= 0) throw new DurationError(`duration ${JSON.stringify(text)} must be more than zero; ${DURATION_HINT}`);
  return ms;
}

/** Short form of a duration (`1h30m`, `500ms`, `2d4h`), the inverse of parseDuration for whole units. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms);
  if (ms === 0) return '0ms';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * UNIT_MS[unit];
    }
  }
  return out;
}
