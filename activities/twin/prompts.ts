import { fnv1a } from './pairs.js';

/**
 * Question templates for "same object instance?" queries. Each says what counts as the
 * same instance, asks for the reasoning, and asks for the verdict in answer tags, which
 * is what the GRPO reward and the FGVQA scorer read. Pipelines may pass their own
 * templates; `{category}` is the only placeholder.
 */

export const DEFAULT_PAIR_TEMPLATES: readonly string[] = [
  'Look at the two images. Do they show the same object instance: the same specific {category}, ' +
    'identical in design, shape, colour, markings and details, rather than merely another {category} of a similar kind? ' +
    'Changes in viewpoint, lighting, background, scale or cropping do not make it a different instance. ' +
    'Explain what you compared, then end with <answer>yes</answer> or <answer>no</answer>.',
  'Image 1 and image 2 each contain a {category}. Is it one and the same instance in both, or two different ones that only look alike? ' +
    'Treat it as the same only if every distinguishing detail you can see (form, colours, patterns, text, logos, parts) agrees; ' +
    'ignore the camera angle, light and surroundings. Reason step by step and give the final verdict as <answer>yes</answer> or <answer>no</answer>.',
  'Compare the {category} in the first picture with the one in the second. Same instance means the identical item design ' +
    'down to its fine details; a sibling product with a different colourway, pattern, shape or marking is a different instance. ' +
    'Describe the decisive similarities or differences, then answer <answer>yes</answer> if they are the same instance and <answer>no</answer> if not.',
];

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** Fills a template; a placeholder other than `{category}` is an error, so typos never reach training data. */
export function renderQuestion(template: string, values: { category: string }): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    if (name !== 'category') throw new Error(`unknown placeholder ${whole} in question template; only {category} is filled in`);
    return values.category.replace(/[-_]+/g, ' ');
  });
}

/** Checks templates up front: each must ask for both answer tags and use known placeholders only. */
export function checkTemplates(templates: readonly string[]): string[] {
  const problems: string[] = [];
  templates.forEach((t, i) => {
    if (!t.includes('<answer>yes</answer>') || !t.includes('<answer>no</answer>')) {
      problems.push(`template ${i}: must ask for <answer>yes</answer> or <answer>no</answer>`);
    }
    for (const [, name] of t.matchAll(PLACEHOLDER)) if (name !== 'category') problems.push(`template ${i}: unknown placeholder {${name}}`);
  });
  return problems;
}

/** The template for one query: spread over the set, fixed by the query's images so reruns match. */
export function pickTemplate(templates: readonly string[], key: string): string {
  return templates[fnv1a(key) % templates.length]!;
}
