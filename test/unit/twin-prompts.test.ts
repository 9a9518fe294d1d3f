import { describe, expect, it } from 'vitest';
import { DEFAULT_PAIR_TEMPLATES, checkTemplates, pickTemplate, renderQuestion } from '../../activities/twin/prompts.js';

describe('question templates', () => {
  it('ship defaults that define the same instance and ask for tagged answers', () => {
    expect(checkTemplates(DEFAULT_PAIR_TEMPLATES)).toEqual([]);
    for (const t of DEFAULT_PAIR_TEMPLATES) expect(t).toMatch(/same/i);
  });

  it('fill in the category and refuse unknown placeholders', () => {
    expect(renderQuestion('Is this {category} the same? <answer>yes</answer>', { category: 'board-game' })).toBe('Is this board game the same? <answer>yes</answer>');
    expect(() => renderQuestion('a {colour} {category}', { category: 'mug' })).toThrow(/unknown placeholder \{colour\}/);
    expect(checkTemplates(['no tags {category}'])).toEqual(['template 0: must ask for <answer>yes</answer> or <answer>no</answer>']);
  });

  it('pick the same template for the same query and use every template across queries', () => {
    const keys = Array.from({ length: 300 }, (_, i) => `img${i}.jpg|img${i + 1}.jpg`);
    expect(pickTemplate(DEFAULT_PAIR_TEMPLATES, keys[0]!)).toBe(pickTemplate(DEFAULT_PAIR_TEMPLATES, keys[0]!));
    expect(new Set(keys.map((k) => pickTemplate(DEFAULT_PAIR_TEMPLATES, k))).size).toBe(DEFAULT_PAIR_TEMPLATES.length);
  });
});
