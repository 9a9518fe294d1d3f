import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { TABLE1_SOURCES, tableInputs, type TableInputs } from '../../engine/kinds/report.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { invalidInput } from '../failures.js';
import { tableKind } from '../../engine/kinds/report.js';
import type { Implementation } from '../kind-implementation.js';
import { buildMetricsTable, renderMetricsHtml, renderMetricsMarkdown } from './metrics-table.js';
import { buildProbeTable, renderProbeHtml, renderProbeMarkdown } from './probe-table.js';
import { esc, mdCell, signed, TABLE_STYLE } from './render.js';

/** Table 1's layout: one row per model, sources as groups of Pair / Multi / Total, then Mean. */

const LABELS: Record<string, string> = { 'twin-eval': 'Twin-Eval', ilias: 'ILIAS', landmarks: 'Landmarks', met: 'MET', cub: 'CUB', inquire: 'INQUIRE' };
const PARTS = ['pair', 'multi', 'total'] as const;

type Value = { accuracy: number; ci?: [number, number] } | null;

export interface TableModel {
  name: string;
  cells: Record<string, Record<(typeof PARTS)[number], Value>>;
  mean: Value;
}

export interface Table {
  title: string;
  sources: Array<{ id: string; label: string }>;
  models: TableModel[];
  /** Each model minus the base, in points, where both have the number. */
  deltas: Array<{ name: string; base: string; cells: Record<string, Record<(typeof PARTS)[number], number | null>>; mean: number | null }>;
}

type Scored = { name: string; summary: NonNullable<TableInputs['models'][number]['summary']> };

export function buildTable(opts: Pick<TableInputs, 'base' | 'title' | 'sources'> & { models: Scored[] }): Table {
  const seen = opts.models.flatMap((m) => Object.keys(m.summary.sources));
  const sources = opts.sources ?? [...TABLE1_SOURCES.filter((s) => seen.includes(s)), ...new Set(seen.filter((s) => !(TABLE1_SOURCES as readonly string[]).includes(s)))];
  const models: TableModel[] = opts.models.map((m) => ({
    name: m.name,
    cells: Object.fromEntries(sources.map((s) => [s, Object.fromEntries(PARTS.map((p) => [p, pick(m.summary.sources[s]?.[p])]))])) as TableModel['cells'],
    mean: pick(m.summary.mean),
  }));
  const base = opts.base === undefined ? undefined : models.find((m) => m.name === opts.base);
  if (opts.base !== undefined && !base) throw new Error(`base ${opts.base} is not one of the models (${models.map((m) => m.name).join(', ')})`);
  const diff = (a: Value, b: Value) => (a && b ? Math.round((a.accuracy - b.accuracy) * 10) / 10 : null);
  const deltas = base ? models.filter((m) => m !== base).map((m) => ({
    name: m.name, base: base.name,
    cells: Object.fromEntries(sources.map((s) => [s, Object.fromEntries(PARTS.map((p) => [p, diff(m.cells[s]![p], base.cells[s]![p])]))])) as Table['deltas'][number]['cells'],
    mean: diff(m.mean, base.mean),
  })) : [];
  return { title: opts.title ?? 'FGVQA accuracy (%)', sources: sources.map((id) => ({ id, label: LABELS[id] ?? id })), models, deltas };
}

function pick(v: { accuracy: number; ci?: [number, number] } | undefined): Value {
  return v ? { accuracy: v.accuracy, ...(v.ci ? { ci: v.ci } : {}) } : null;
}

const num = (v: Value, intervals: boolean) => (v ? `${v.accuracy.toFixed(1)}${intervals && v.ci ? ` [${v.ci[0].toFixed(1)}, ${v.ci[1].toFixed(1)}]` : ''}` : '–');

export function renderMarkdown(t: Table, intervals = false): string {
  const head = ['Model', ...t.sources.flatMap((s) => PARTS.map((p) => `${s.label} ${p[0]!.toUpperCase()}${p.slice(1)}`)), 'Mean'];
  const rows = t.models.map((m) => [m.name, ...t.sources.flatMap((s) => PARTS.map((p) => num(m.cells[s.id]![p], intervals))), num(m.mean, intervals)]);
  const deltas = t.deltas.map((d) => [`Δ ${d.name} vs ${d.base}`, ...t.sources.flatMap((s) => PARTS.map((p) => signed(d.cells[s.id]![p]))), signed(d.mean)]);
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  return [`**${mdCell(t.title)}**`, '', line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...[...rows, ...deltas].map(line), ''].join('\n');
}


export function renderHtml(t: Table, intervals = false): string {
  const group = t.sources.map((s) => `<th colspan="3" scope="colgroup">${esc(s.label)}</th>`).join('');
  const sub = t.sources.map(() => PARTS.map((p) => `<th scope="col">${p[0]!.toUpperCase()}${p.slice(1)}</th>`).join('')).join('');
  const td = (text: string, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${esc(text)}</td>`;
  const rows = t.models.map((m) => `<tr><th scope="row">${esc(m.name)}</th>${t.sources.map((s) => PARTS.map((p) => td(num(m.cells[s.id]![p], intervals))).join('')).join('')}${td(num(m.mean, intervals), 'mean')}</tr>`);
  const deltas = t.deltas.map((d) => `<tr class="delta"><th scope="row">${esc(`Δ ${d.name} vs ${d.base}`)}</th>${t.sources.map((s) => PARTS.map((p) => td(signed(d.cells[s.id]![p]))).join('')).join('')}${td(signed(d.mean), 'mean')}</tr>`);
  return [
    '<!doctype html>', '<meta charset="utf-8">', `<title>${esc(t.title)}</title>`,
    TABLE_STYLE,
    `<table><caption>${esc(t.title)}</caption>`,
    `<thead><tr><th rowspan="2" scope="col">Model</th>${group}<th rowspan="2" scope="col">Mean</th></tr><tr>${sub}</tr></thead>`,
    `<tbody>${[...rows, ...deltas].join('')}</tbody></table>`, '',
  ].join('\n');
}

export function createRenderTable(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof tableKind> {
  return async function renderTable(input: StageActivityInput) {
    const opts = parseInputs(tableInputs, input);
    const scored = opts.models.filter((m): m is Scored => m.summary !== undefined);
    const measured = opts.models.filter((m): m is { name: string; metrics: Record<string, Record<string, number>> } => m.metrics !== undefined);
    const probed = opts.models.filter((m): m is { name: string; probe: Record<string, { linear: number; knn: number }> } => m.probe !== undefined);
    const kinds = [['fgvqa/score summaries', scored], ['lmms-eval/run metrics', measured], ['probe/encoder results', probed]] as const;
    const mixed = kinds.filter(([, ms]) => ms.length);
    if (mixed.length > 1) {
      throw invalidInput(`stage ${input.stageId} (report/table): with.models mixes ${mixed.map(([what, ms]) => `${what} (${ms.map((m) => m.name).join(', ')})`).join(' and ')}; make one table of each`);
    }
    let rendered: { md: string; html: string; json: unknown; mean: Record<string, number> };
    try {
      if (scored.length) {
        const table = buildTable({ ...opts, models: scored });
        rendered = { md: renderMarkdown(table, opts.intervals), html: renderHtml(table, opts.intervals), json: table, mean: Object.fromEntries(table.models.map((m) => [m.name, m.mean?.accuracy ?? 0])) };
      } else if (probed.length) {
        const table = buildProbeTable({ ...opts, models: probed });
        rendered = { md: renderProbeMarkdown(table), html: renderProbeHtml(table), json: table, mean: Object.fromEntries(table.models.map((m) => [m.name, m.mean ?? 0])) };
      } else {
        const table = buildMetricsTable({ ...opts, models: measured });
        rendered = { md: renderMetricsMarkdown(table), html: renderMetricsHtml(table), json: table, mean: Object.fromEntries(table.models.map((m) => [m.name, m.mean ?? 0])) };
      }
    } catch (err) {
      throw invalidInput(`stage ${input.stageId} (report/table): with.${(err as Error).message}`);
    }
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const written: Record<string, string> = {};
    for (const [name, text] of [['table.md', rendered.md], ['table.html', rendered.html], ['table.json', `${JSON.stringify(rendered.json, null, 2)}\n`]] as const) {
      written[name] = path.join(dir, name);
      await fs.writeFile(written[name]!, text);
    }
    const files = Object.fromEntries(await Promise.all(Object.entries(written).map(async ([name, file]) => [name, await deps.store.putFile(file)])));
    const outputs = { markdown: written['table.md']!, html: written['table.html']!, json: written['table.json']!, files, mean: rendered.mean };
    return { outputs: outputs, attempt: Context.current().info.attempt };
  };
}
