/** Database rows `[start, end)` that a query row must not return (itself, its instance's rows). */
export interface ColumnRange {
  start: number;
  end: number;
}

/** A run of query rows scored together: rows `[start, end)`. */
export interface RowBlock {
  start: number;
  end: number;
}

/**
 * Splits `total` rows into blocks of at most `blockRows`, each ending at one of `breaks`
 * (ascending row positions, e.g. where each instance's rows end) so that a block holds
 * whole groups; a group larger than `blockRows` is a block of its own. Without breaks any
 * row may end a block.
 */
export function planBlocks(total: number, blockRows: number, breaks?: ArrayLike<number>): RowBlock[] {
  if (!Number.isInteger(blockRows) || blockRows < 1) throw new RangeError(`blockRows is ${blockRows}; it must be a whole number >= 1`);
  const blocks: RowBlock[] = [];
  if (!breaks) {
    for (let start = 0; start < total; start += blockRows) blocks.push({ start, end: Math.min(total, start + blockRows) });
    return blocks;
  }
  let start = 0;
  let last = 0;
  for (let i = 0; i < breaks.length; i++) {
    const at = breaks[i]!;
    if (!Number.isInteger(at) || at < last || at > total) throw new RangeError(`breaks must be ascending row positions within 0..${total}; got ${at} after ${last}`);
    if (at - start > blockRows && last > start) {
      blocks.push({ start, end: last });
      start = last;
    }
    last = at;
  }
  if (last !== total) throw new RangeError(`the last break is ${last}, but a block must end at the last row (${total})`);
  if (last > start) blocks.push({ start, end: last });
  return blocks;
}
