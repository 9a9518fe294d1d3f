/**
 * The best `k` entries offered so far: highest score first, equal scores by the lower id,
 * so the result never depends on the order of offers. Each entry carries two numbers of
 * evidence (e.g. the matrix rows of the best image pair). Insertion is O(k); once the list
 * is full, most offers are turned away by one comparison with the last entry.
 */
export class RankedList {
  readonly scores: Float64Array;
  readonly ids: Int32Array;
  readonly first: Int32Array;
  readonly second: Int32Array;
  size = 0;

  constructor(readonly k: number) {
    this.scores = new Float64Array(k);
    this.ids = new Int32Array(k);
    this.first = new Int32Array(k);
    this.second = new Int32Array(k);
  }

  offer(score: number, id: number, first: number, second: number): void {
    if (this.k === 0 || Number.isNaN(score)) return;
    if (this.size === this.k && !this.before(score, id, this.k - 1)) return;
    let i = this.size < this.k ? this.size++ : this.k - 1;
    for (; i > 0 && this.before(score, id, i - 1); i--) {
      this.scores[i] = this.scores[i - 1]!;
      this.ids[i] = this.ids[i - 1]!;
      this.first[i] = this.first[i - 1]!;
      this.second[i] = this.second[i - 1]!;
    }
    this.scores[i] = score;
    this.ids[i] = id;
    this.first[i] = first;
    this.second[i] = second;
  }

  /**
   * Renames every entry's id and evidence (e.g. from a subset's numbering to the whole
   * set's). Both maps must keep order, so that equal scores stay ranked by the lower id.
   */
  relabel(id: (id: number) => number, evidence: (n: number) => number): void {
    for (let i = 0; i < this.size; i++) {
      this.ids[i] = id(this.ids[i]!);
      this.first[i] = evidence(this.first[i]!);
      this.second[i] = evidence(this.second[i]!);
    }
  }

  /** Whether (score, id) ranks above entry i. */
  private before(score: number, id: number, i: number): boolean {
    return score > this.scores[i]! || (score === this.scores[i]! && id < this.ids[i]!);
  }
}
