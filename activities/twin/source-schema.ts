import { z } from 'zod';
import { jsonTypeOf } from '../data/jsonl.js';

/**
 * The shape `twin/source` needs of a catalog or review line (Amazon Reviews 2023 layout).
 * Fields it does not read are not checked, and absent or null ones are allowed: real
 * dumps leave many out. Anything else of the wrong kind makes the line malformed, since
 * guessing (an object as a category, a number as a URL) would file listings wrongly.
 */

const text = () => z.string({ error: 'expected a string or null' }).nullish();
const images = <T extends z.ZodRawShape>(shape: T) =>
  z.array(z.object(shape, { error: 'expected an image object' }), { error: 'expected a list of image objects or null' }).nullish();

export const catalogLine = z.object({
  parent_asin: text(),
  title: text(),
  main_category: text(),
  images: images({ hi_res: text(), large: text(), thumb: text() }),
}, { error: 'expected a JSON object' });

export const reviewLine = z.object({
  parent_asin: text(),
  asin: text(),
  images: images({ large_image_url: text(), medium_image_url: text(), small_image_url: text() }),
}, { error: 'expected a JSON object' });

export type CatalogLine = z.infer<typeof catalogLine>;
export type ReviewLine = z.infer<typeof reviewLine>;

/** `field images.2.large: expected a string or null, got a number`, for the first issue of a line. */
export function describeIssue(error: z.ZodError, value: unknown): string {
  const issue = error.issues[0]!;
  const at = issue.path.join('.');
  let got: unknown = value;
  for (const key of issue.path) got = (got as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey];
  const extra = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${at ? `field ${at}: ` : ''}${issue.message}, got ${jsonTypeOf(got)}${extra}`;
}
