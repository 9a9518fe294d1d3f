import { TABLE5_DATASETS } from '../../engine/kinds/probe.js';
import type { TableInputs } from '../../engine/kinds/report.js';
import { esc, mdCell, signed, TABLE_STYLE } from './render.js';

/**
 * Table 5's layout: one row per model (encoder), each dataset a group of Linear and kNN
 * top-1 accuracy (%), then the mean of each over the datasets, and a delta row per model
 * against the base.
 */
export interface ProbeTable {
  title: string;
  datasets: Array<{ id: string; label: string }>;
  models: Array<{ name: string; values: Array<number | null>; mean: number | null }>;
  deltas: Array<{ name: string; base: string; values: Array<number | null>; mean: number | null }>;
}

const LABELS: Record<string, string> = { pets: 'Pets', sun397: 'SUN397', cub: 'CUB', cifar100: 'CIFAR-100' };
const PARTS = [['linear', 'Linear'], ['knn', 'kNN']] as const;
type Model = { name: string; probe: Record<string, { linear: number; knn: number }> };

const round = (v: number) => Math.round(v * 10) / 10;
const meanOf = (xs: Array<number | null>) => (xs.length && xs.every((x) => x !== null) ? round((xs as number[]).reduce((a, b) => a + b, 0) / xs.length) : null);

/** Cells per model: each dataset's Linear and kNN, then mean Linear and mean kNN; `mean` is the mean of every dataset cell. */
export function buildProbeTable(opts: Pick<TableInputs, 'base' | 'title' | 'sources'> & { models: Model[] }): ProbeTable {
  const seen = opts.models.flatMap((m) => Object.keys(m.probe));
  const known: readonly string[] = TABLE5_DATASETS;
  const ids = opts.sources ?? [...known.filter((d) => seen.includes(d)), ...new Set(seen.filter((d) => !known.includes(d)))];
  const missing = ids.filter((d) => !seen.includes(d));
  if (missing.length) throw new Error(`sources: no model has probe results for ${missing.join(', ')}`);
  const models = opts.models.map((m) => {
    const cells = ids.flatMap((d) => PARTS.map(([p]) => (m.probe[d] ? round(m.probe[d][p]) : null)));
    const byPart = PARTS.map((_, j) => meanOf(ids.map((_, i) => cells[i * 2 + j]!)));
    return { name: m.name, values: [...cells, ...byPart], mean: meanOf(cells) };
  });
  const base = opts.base === undefined ? undefined : models.find((m) => m.name === opts.base);
  if (opts.base !== undefined && !base) throw new Error(`base ${opts.base} is not one of the models (${models.map((m) => m.name).join(', ')})`);
  const diff = (a: number | null, b: number | null) => (a !== null && b !== null ? round(a - b) : null);
  const deltas = base ? models.filter((m) => m !== base).map((m) => ({
    name: m.name, base: base.name, values: m.values.map((v, i) => diff(v, base.values[i]!)), mean: diff(m.mean, base.mean),
  })) : [];
  return { title: opts.title ?? 'Encoder probing, top-1 accuracy (%)', datasets: ids.map((id) => ({ id, label: LABELS[id] ?? id })), models, deltas };
}

const num = (v: number | null) => (v === null ? '–' : v.toFixed(1));
const groups = (t: ProbeTable) => [...t.datasets.map((d) => d.label), 'Mean'];

export function renderProbeMarkdown(t: ProbeTable): string {
  const head = ['Model', ...groups(t).flatMap((g) => PARTS.map(([, label]) => `${g} ${label}`))];
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  const rows = t.models.map((m) => [m.name, ...m.values.map(num)]);
  const deltas = t.deltas.map((d) => [`Δ ${d.name} vs ${d.base}`, ...d.values.map(signed)]);
  return [`**${mdCell(t.title)}**`, '', line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...[...rows, ...deltas].map(line), ''].join('\n');
}

export function renderProbeHtml(t: ProbeTable): string {
  const n = t.datasets.length * 2;
  const td = (text: string, i: number) => `<td${i >= n ? ' class="mean"' : ''}>${esc(text)}</td>`;
  const group = groups(t).map((g) => `<th colspan="2" scope="colgroup">${esc(g)}</th>`).join('');
  const sub = groups(t).map(() => PARTS.map(([, label]) => `<th scope="col">${label}</th>`).join('')).join('');
  const rows = t.models.map((m) => `<tr><th scope="row">${esc(m.name)}</th>${m.values.map((v, i) => td(num(v), i)).join('')}</tr>`);
  const deltas = t.deltas.map((d) => `<tr class="delta"><th scope="row">${esc(`Δ ${d.name} vs ${d.base}`)}</th>${d.values.map((v, i) => td(signed(v), i)).join('')}</tr>`);
  return [
    '<!doctype html>', '<meta charset="utf-8">', `<title>${esc(t.title)}</title>`,
    TABLE_STYLE,
    `<table><caption>${esc(t.title)}</caption>`,
    `<thead><tr><th rowspan="2" scope="col">Model</th>${group}</tr><tr>${sub}</tr></thead>`,
    `<tbody>${[...rows, ...deltas].join('')}</tbody></table>`, '',
  ].join('\n');
}
