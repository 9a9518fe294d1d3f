/*
 * The published FGVQA scoring rules on tricky outputs, one table per rule, and the
 * property that the strict variant (tags only) never scores an output the default misses.
 */
import { describe, expect, it } from 'vitest';
import { isCorrect, parseAnswer } from '../../activities/fgvqa/answers.js';
import { seededRandom } from '../../activities/twin/pairs.js';

describe('pair answers', () => {
  it.each([
    ['the first <answer> span decides', 'They differ.<answer>no</answer> later <answer>yes</answer>', 'no', 'no'],
    ['the last whole yes/no word inside the span', '<answer>Yes... on reflection, no</answer>', 'no', 'no'],
    ['words that merely contain yes/no do not count', '<answer>I know, yesterday: Yes</answer>', 'yes', 'yes'],
    ['case is ignored', '<ANSWER> YES </ANSWER>', 'yes', 'yes'],
    ['a synonym when no yes/no word is inside', '<answer>Yep, same mug.</answer>', 'yes', 'yes'],
    ['the last synonym wins', '<answer>true... actually false</answer>', 'no', 'no'],
    ['digits are synonyms too', '<answer>1</answer>', 'yes', 'yes'],
    ['else the span\'s first word, without punctuation', '<answer>"Different" objects</answer>', 'different', 'different'],
    ['an empty span falls back to the whole text', 'Same listing, so yes. <answer> </answer>', 'yes', null],
    ['no tags: the same rule on the whole text', 'Looking closely, the logos match: yes.', 'yes', null],
    ['no opening tag: tags removed, then the whole text', 'answer>no? The </answer> answer is Yes', 'yes', null],
    ['nothing readable', '', null, null],
  ])('%s', (_name, output, expected, strict) => {
    expect(parseAnswer('pair', output)).toBe(expected);
    expect(parseAnswer('pair', output, true)).toBe(strict);
  });
});

describe('multi answers', () => {
  it.each([
    ['a lone digit inside the tags', 'Two look alike, but <answer>1</answer>', '1', '1'],
    ['spaces around the digit are fine', '<answer>  3 </answer>', '3', '3'],
    ['a lone-digit span later in the text still counts', '<answer>two</answer> so <answer>2</answer>', '2', '2'],
    ['else the last standalone 0-3 digit anywhere', 'Candidates 1 and 3 match, so 2 in all. <answer>two</answer>', '2', null],
    ['digits inside numbers do not count', 'I checked 12 details and 30 spots; 0', '0', null],
    ['4 and above are no answer', '<answer>4</answer>', null, null],
  ])('%s', (_name, output, expected, strict) => {
    expect(parseAnswer('multi', output)).toBe(expected);
    expect(parseAnswer('multi', output, true)).toBe(strict);
  });
});

it('never lets the strict rules score an output the default rules miss', () => {
  const random = seededRandom(7);
  const pieces = ['yes', 'no', 'Yes.', 'nope', 'y', '0', '1', '2', '3', '4', 'maybe', 'same', ' ', '\n', '<answer>', '</answer>', 'the', '12', '"no"', '<answer>yes</answer>', '<answer>No.</answer>', '<answer>2</answer>', '<answer>nope</answer>'];
  let strictHits = 0;
  for (let i = 0; i < 20_000; i++) {
    const output = Array.from({ length: 1 + Math.floor(random() * 8) }, () => pieces[Math.floor(random() * pieces.length)]).join(' ');
    const type = i % 2 ? 'pair' : 'multi';
    for (const answer of type === 'pair' ? ['yes', 'no'] : ['0', '1', '2', '3']) {
      const strict = isCorrect(parseAnswer(type, output, true), answer);
      if (strict) strictHits++;
      if (strict) expect(isCorrect(parseAnswer(type, output), answer), output).toBe(true);
    }
  }
  expect(strictHits).toBeGreaterThan(1000);
});
