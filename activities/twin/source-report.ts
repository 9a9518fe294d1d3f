/** Counts and a few examples of everything `twin/source` left out, for people to read. */
export class SourceReport {
  readonly counts: Record<string, number> = { listings: 0, instances: 0, images: 0 };
  private readonly samples: Record<string, string[]> = {};
  private readonly categories: Record<string, number> = {};

  static readonly SAMPLES_PER_KIND = 20;

  count(kind: string, by = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + by;
  }

  problem(kind: string, message: string): void {
    this.count(kind);
    const list = (this.samples[kind] ??= []);
    if (list.length < SourceReport.SAMPLES_PER_KIND) list.push(message);
  }

  category(name: string): void {
    this.categories[name] = (this.categories[name] ?? 0) + 1;
  }

  toJson() {
    const sorted = Object.fromEntries(Object.entries(this.categories).sort(([a], [b]) => a.localeCompare(b)));
    return { counts: this.counts, instancesByCategory: sorted, examples: this.samples };
  }
}
