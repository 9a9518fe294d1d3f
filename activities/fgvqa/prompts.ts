/**
 * Our own FGVQA question templates, one per domain. Object domains define what "the same
 * instance" means; every template asks for a short explanation and the answer inside
 * <answer></answer>, which the scoring rules read.
 */

export type Domain = 'instance' | 'artwork' | 'landmark' | 'species';

const SUBJECT: Record<Domain, { thing: string; rule: string }> = {
  instance: {
    thing: 'the same object instance',
    rule: 'The same instance means the very same physical object or an identical copy of one product: same design, shape, colours, ' +
      'markings and small details. Another object of the same kind that differs in any such detail is a different instance. ' +
      'Viewpoint, lighting, background, scale and cropping do not matter.',
  },
  artwork: { thing: 'the same work of art', rule: 'Photos of one artwork from other angles, distances or lighting count as the same work; a different piece in a similar style does not.' },
  landmark: { thing: 'the same landmark', rule: 'Other views, seasons, times of day or parts of one building or place count as the same landmark; a similar-looking place elsewhere does not.' },
  species: { thing: 'the same species', rule: 'Decide by the organism\'s species, not by pose, age, background or photo quality.' },
};

export function pairQuestion(domain: Domain): string {
  const { thing, rule } = SUBJECT[domain];
  return `Do these two images show ${thing}? ${rule} Explain briefly what you compared, then give your answer as <answer>yes</answer> or <answer>no</answer>.`;
}

export function multiQuestion(domain: Domain): string {
  const { thing, rule } = SUBJECT[domain];
  return `The first image is the reference. How many of the other three images show ${thing} as the reference? ${rule} ` +
    'Explain briefly, then give the count (0, 1, 2 or 3) as <answer>N</answer>.';
}
