import { TABLE4_TASKS, TABLE6_TASKS } from '../../engine/kinds/evaluate.js';
import type { TableInputs } from '../../engine/kinds/report.js';
import { esc, mdCell, signed, TABLE_STYLE } from './render.js';

/**
 * Tables 4 and 6's layout: one row per model, one column per task (a metric of lmms-eval's
 * results, as a percentage when the task's values are fractions), the mean of the columns,
 * and a delta row per model against the base.
 */
export interface MetricsTable {
  title: string;
  columns: Array<{ task: string; metric: string; label: string; percent: boolean }>;
  models: Array<{ name: string; values: Array<number | null>; mean: number | null }>;
  deltas: Array<{ name: string; base: string; values: Array<number | null>; mean: number | null }>;
}

const LABELS: Record<string, string> = {
  realworldqa: 'RealWorldQA', pope: 'POPE', cv_bench: 'CV-Bench', ai2d: 'AI2D', seedbench: 'SEED', chartqa: 'ChartQA', textvqa_val: 'TextVQA',
  blink: 'BLINK', mmmu_val: 'MMMU', vlms_are_biased: 'VLMs-are-Biased', mmlu: 'MMLU', hellaswag: 'HellaSwag', gsm8k: 'GSM8K',
};

type Model = { name: string; metrics: Record<string, Record<string, number>> };

export function buildMetricsTable(opts: Pick<TableInputs, 'base' | 'title' | 'columns'> & { models: Model[] }): MetricsTable {
  const first = opts.models[0]!.metrics;
  const known: readonly string[] = [...TABLE4_TASKS, ...TABLE6_TASKS];
  const wanted: Array<{ task: string; metric?: string; label?: string }> = opts.columns
    ?? [...known.filter((t) => t in first), ...Object.keys(first).filter((t) => !known.includes(t))].map((task) => ({ task }));
  const columns = wanted.map((c) => {
    const holder = opts.models.find((m) => m.metrics[c.task]);
    if (!holder) throw new Error(`columns: no model has results for task ${c.task}`);
    const metric = c.metric ?? Object.keys(holder.metrics[c.task]!)[0];
    if (!metric || !(metric in holder.metrics[c.task]!)) {
      throw new Error(`columns: task ${c.task} has no metric ${metric ?? '(none)'} (it has ${Object.keys(holder.metrics[c.task]!).join(', ')})`);
    }
    const values = opts.models.map((m) => m.metrics[c.task]?.[metric]).filter((v): v is number => v !== undefined);
    return { task: c.task, metric, label: c.label ?? LABELS[c.task] ?? c.task, percent: values.every((v) => v >= 0 && v <= 1) };
  });
  const round = (v: number) => Math.round(v * 10) / 10;
  const models = opts.models.map((m) => {
    const values = columns.map((c) => {
      const v = m.metrics[c.task]?.[c.metric];
      return v === undefined ? null : round(c.percent ? v * 100 : v);
    });
    const present = values.filter((v): v is number => v !== null);
    return { name: m.name, values, mean: present.length === values.length ? round(present.reduce((a, b) => a + b, 0) / present.length) : null };
  });
  const base = opts.base === undefined ? undefined : models.find((m) => m.name === opts.base);
  if (opts.base !== undefined && !base) throw new Error(`base ${opts.base} is not one of the models (${models.map((m) => m.name).join(', ')})`);
  const diff = (a: number | null, b: number | null) => (a !== null && b !== null ? round(a - b) : null);
  const deltas = base ? models.filter((m) => m !== base).map((m) => ({
    name: m.name, base: base.name, values: m.values.map((v, i) => diff(v, base.values[i]!)), mean: diff(m.mean, base.mean),
  })) : [];
  return { title: opts.title ?? 'General benchmarks', columns, models, deltas };
}

const num = (v: number | null) => (v === null ? '–' : v.toFixed(1));

export function renderMetricsMarkdown(t: MetricsTable): string {
  const head = ['Model', ...t.columns.map((c) => c.label), 'Mean'];
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  const rows = t.models.map((m) => [m.name, ...m.values.map(num), num(m.mean)]);
  const deltas = t.deltas.map((d) => [`Δ ${d.name} vs ${d.base}`, ...d.values.map(signed), signed(d.mean)]);
  const metrics = t.columns.map((c) => `${c.label}: ${c.task} ${c.metric}${c.percent ? ' (%)' : ''}`).join('; ');
  return [`**${mdCell(t.title)}**`, '', line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...[...rows, ...deltas].map(line), '', mdCell(metrics), ''].join('\n');
}

export function renderMetricsHtml(t: MetricsTable): string {
  const td = (text: string, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${esc(text)}</td>`;
  const head = `<tr><th scope="col">Model</th>${t.columns.map((c) => `<th scope="col" title="${esc(`${c.task} ${c.metric}`)}">${esc(c.label)}</th>`).join('')}<th scope="col">Mean</th></tr>`;
  const rows = t.models.map((m) => `<tr><th scope="row">${esc(m.name)}</th>${m.values.map((v) => td(num(v))).join('')}${td(num(m.mean), 'mean')}</tr>`);
  const deltas = t.deltas.map((d) => `<tr class="delta"><th scope="row">${esc(`Δ ${d.name} vs ${d.base}`)}</th>${d.values.map((v) => td(signed(v))).join('')}${td(signed(d.mean), 'mean')}</tr>`);
  return [
    '<!doctype html>', '<meta charset="utf-8">', `<title>${esc(t.title)}</title>`,
    TABLE_STYLE,
    `<table><caption>${esc(t.title)}</caption>`, `<thead>${head}</thead>`, `<tbody>${[...rows, ...deltas].join('')}</tbody></table>`, '',
  ].join('\n');
}
