import type { DecisionPolicy } from '../../engine/kinds/review.js';

/** The fields of a review item a policy looks at. */
export interface Rankable {
  id: string;
  group?: string;
  score?: number;
}

/**
 * The ids a policy accepts. Ranking inside a group is by score (missing = lowest), then
 * id, so the outcome never depends on the order items arrive in.
 */
export function acceptedIds(items: readonly Rankable[], p: DecisionPolicy): Set<string> {
  if (p.accept === 'none') return new Set();
  const eligible = items.filter((it) => p.minScore === undefined || (it.score ?? -Infinity) >= p.minScore);
  if (p.top === undefined) return new Set(eligible.map((it) => it.id));
  const groups = new Map<string, Rankable[]>();
  for (const it of eligible) {
    const key = it.group ?? '';
    const list = groups.get(key) ?? [];
    list.push(it);
    groups.set(key, list);
  }
  const accepted = new Set<string>();
  for (const list of groups.values()) {
    list.sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const it of list.slice(0, p.top)) accepted.add(it.id);
  }
  return accepted;
}
