/**
 * The published FGVQA scoring rules, as pure functions (DESIGN.md section 1):
 *
 * - pair: the first `<answer>...</answer>` span; inside it the last whole word yes/no,
 *   else the last yes/no synonym, else its first word. With no usable span (none, or
 *   nothing word-like inside), the same rule on the whole text with the tags removed.
 * - multi: a span holding a lone digit 0-3, else the last standalone 0-3 digit anywhere.
 *
 * `strict` reads only what is inside the tags and never falls back to the raw text, so a
 * strict answer is always also the default answer: strict accuracy never exceeds default.
 */

export type QueryType = 'pair' | 'multi';

const FIRST_SPAN = /<answer>([\s\S]*?)<\/answer>/i;
const LONE_DIGIT_SPAN = /<answer>\s*([0-3])\s*<\/answer>/i;
const TAGS = /<\/?answer>/gi;
const YES_NO = /\b(yes|no)\b/g;
const SYNONYMS = /\b(y|yeah|yep|true|1|n|nope|false|0)\b/g;
const YES_SYNONYMS = new Set(['y', 'yeah', 'yep', 'true', '1']);
const DIGIT = /\b([0-3])\b/g;

function lastMatch(text: string, pattern: RegExp): string | undefined {
  let last: string | undefined;
  for (const m of text.matchAll(pattern)) last = m[1];
  return last;
}

/** The pair rule on one piece of text; undefined when it holds nothing word-like. */
function pairFrom(text: string): string | undefined {
  const lower = text.toLowerCase();
  const word = lastMatch(lower, YES_NO);
  if (word) return word;
  const synonym = lastMatch(lower, SYNONYMS);
  if (synonym) return YES_SYNONYMS.has(synonym) ? 'yes' : 'no';
  const first = lower.trim().split(/\s+/)[0]?.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
  return first || undefined;
}

/** What a model's output answers, or null when nothing can be read from it. */
export function parseAnswer(type: QueryType, output: string, strict = false): string | null {
  if (type === 'multi') {
    const tagged = output.match(LONE_DIGIT_SPAN)?.[1];
    if (tagged !== undefined || strict) return tagged ?? null;
    return lastMatch(output, DIGIT) ?? null;
  }
  const span = output.match(FIRST_SPAN)?.[1];
  const inside = span === undefined ? undefined : pairFrom(span);
  if (inside !== undefined || strict) return inside ?? null;
  return pairFrom(output.replace(TAGS, ' ')) ?? null;
}

/** Exact match of the parsed answer with the expected one (yes/no lower-case, 0-3 as text). */
export function isCorrect(parsed: string | null, answer: string): boolean {
  return parsed !== null && parsed === answer.trim().toLowerCase();
}
