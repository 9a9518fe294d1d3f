/**
 * How much one run can hold. A run's compiled pipeline and the state of every stage travel
 * together as the workflow's input each time the run continues as new, and Temporal
 * refuses a payload over 2 MB (the server's `limit.blobSize.error`): a run past that can
 * never continue and stalls. Measured on the dev server with no-op stages (about 300 bytes
 * of pipeline and 200 of state each): 4,000 stages ran through three continue-as-new
 * generations, and 6,000 stalled at the first (2.57 MB). Real stages carry more inputs and
 * outputs, so the limits leave room.
 */

/** Temporal's limit on one payload. */
export const TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024;

/** Most stages one run holds, matrix copies included. */
export const MAX_RUN_STAGES = 2_000;

/** Largest compiled pipeline, in bytes of JSON. */
export const MAX_PIPELINE_BYTES = 768 * 1024;

/** Pipeline plus stage state plus outputs of one run, in bytes of JSON: what continue-as-new carries. */
export const RUN_STATE_BUDGET = 1_800_000;

/** UTF-8 length of a string, without TextEncoder (workflow code runs in a sandbox). */
export function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
