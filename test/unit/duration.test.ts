import { describe, expect, it } from 'vitest';
import { DurationError, formatDuration, parseDuration } from '../../engine/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['1m', 60_000],
    ['48h', 172_800_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    [' 1h 30m ', 5_400_000],
  ])('reads %s as %d milliseconds', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('refuses a bare number and says to add a unit', () => {
    expect(() => parseDuration('30')).toThrow(/has no unit; write a number with a unit: 500ms, 90s/);
  });

  it.each(['-5s', '0s', '0ms', '', 'soon', '5x', '1h30', 'h1', '5 seconds'])('refuses %j with a DurationError that shows the format', (text) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
    expect(() => parseDuration(text)).toThrow(/1h30m/);
  });

  it('says a zero duration must be more than zero', () => {
    expect(() => parseDuration('0s')).toThrow(/must be more than zero/);
  });

  it('says a negative duration is negative', () => {
    expect(() => parseDuration('-1m')).toThrow(/is negative/);
  });
});

describe('formatDuration', () => {
  it.each([
    [500, '500ms'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m'],
    [172_800_000, '2d'],
    [0, '0ms'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 61_001, 90_061_001]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
