/**
 * The best `k` (score, id) entries seen so far, highest score first, ties by the lower
 * id, so results never depend on visiting order. Insertion is O(k); most candidates are
 * rejected by one comparison with the current k-th score.
 */
export class TopList {
  readonly scores: Float64Array;
  readonly ids: Int32Array;
  readonly extra: Int32Array;
  size = 0;

  constructor(readonly k: number) {
    this.scores = new Float64Array(k);
    this.ids = new Int32Array(k);
    this.extra = new Int32Array(k);
  }

  /** The score a new entry must beat (or tie with a lower id) to get in. */
  get floor(): number {
    return this.size < this.k ? -Infinity : this.scores[this.k - 1]!;
  }

  offer(score: number, id: number, extra = 0): void {
    if (this.k === 0) return;
    if (this.size === this.k) {
      const last = this.k - 1;
      if (score < this.scores[last]! || (score === this.scores[last]! && id > this.ids[last]!)) return;
    }
    let i = this.size < this.k ? this.size++ : this.k - 1;
    while (i > 0 && (this.scores[i - 1]! < score || (this.scores[i - 1]! === score && this.ids[i - 1]! > id))) {
      this.scores[i] = this.scores[i - 1]!;
      this.ids[i] = this.ids[i - 1]!;
      this.extra[i] = this.extra[i - 1]!;
      i--;
    }
    this.scores[i] = score;
    this.ids[i] = id;
    this.extra[i] = extra;
  }
}
