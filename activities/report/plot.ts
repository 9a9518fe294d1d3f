import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Context } from '@temporalio/activity';
import { plotInputs } from '../../engine/kinds/report.js';
import type { ArtifactStore } from '../artifact-store.js';
import { renderSvg } from '../export/figure.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { buildTable } from './table.js';
import { plotKind } from '../../engine/kinds/report.js';
import type { Implementation } from '../kind-implementation.js';

type PlotModel = { name: string; size?: number; summary: { sources: Record<string, { total: { accuracy: number; ci?: [number, number] } }>; mean: { accuracy: number; ci?: [number, number] } } };

/** Total accuracy per source and the Mean for each model, bars with their bootstrap intervals. */
export function barsSpec(models: PlotModel[], title = 'FGVQA accuracy by source'): Record<string, unknown> {
  const table = buildTable({ models, title, base: undefined, sources: undefined });
  const values = table.models.flatMap((m) => [
    ...table.sources.map((s) => ({ model: m.name, source: s.label, ...cell(m.cells[s.id]!.total) })),
    { model: m.name, source: 'Mean', ...cell(m.mean) },
  ]).filter((v) => v.accuracy !== null);
  const x = { field: 'source', type: 'nominal', title: null, sort: [...table.sources.map((s) => s.label), 'Mean'], axis: { labelAngle: 0 } };
  const xOffset = { field: 'model', sort: models.map((m) => m.name) };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, width: 80 * (table.sources.length + 1), height: 300,
    data: { values },
    layer: [
      { mark: 'bar', encoding: { x, xOffset, color: { field: 'model', type: 'nominal', sort: models.map((m) => m.name), title: 'model' }, y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (%)', scale: { domain: [0, 100] } } } },
      // Interval whiskers in the middle of each bar.
      { mark: { type: 'rule', color: '#222' }, encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

/** Mean accuracy against training-set size (log scale), with the interval as a band. */
export function scalingSpec(models: PlotModel[], title = 'FGVQA mean accuracy against training data'): Record<string, unknown> {
  const values = models.map((m) => ({ model: m.name, size: m.size, ...cell(m.summary.mean) }));
  const x = { field: 'size', type: 'quantitative', title: 'training queries', scale: { type: 'log' } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, width: 420, height: 300,
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.2 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'mean accuracy (%)' }, y2: { field: 'hi' } } },
      { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'accuracy', type: 'quantitative' } } },
      { mark: { type: 'text', dy: -10 }, encoding: { x, y: { field: 'accuracy', type: 'quantitative' }, text: { field: 'model' } } },
    ],
  };
}

function cell(v: { accuracy: number; ci?: [number, number] } | null) {
  return { accuracy: v?.accuracy ?? null, lo: v?.ci?.[0] ?? v?.accuracy ?? null, hi: v?.ci?.[1] ?? v?.accuracy ?? null };
}

export function createRenderPlot(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof plotKind> {
  return async function renderPlot(input: StageActivityInput) {
    const opts = parseInputs(plotInputs, input);
    const models = opts.models as PlotModel[];
    const spec = opts.chart === 'bars' ? barsSpec(models, opts.title) : scalingSpec([...models].sort((a, b) => a.size! - b.size!), opts.title);
    const svgText = await renderSvg(spec);
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const svg = path.join(dir, `${opts.chart}.svg`);
    const png = path.join(dir, `${opts.chart}.png`);
    await fs.writeFile(svg, svgText);
    await sharp(Buffer.from(svgText), { density: 144 }).flatten({ background: '#ffffff' }).png().toFile(png);
    const files = { [path.basename(svg)]: await deps.store.putFile(svg, 'image/svg+xml'), [path.basename(png)]: await deps.store.putFile(png, 'image/png') };
    return { outputs: { svg, png, files }, attempt: Context.current().info.attempt };
  };
}
