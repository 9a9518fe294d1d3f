import fs from 'node:fs/promises';

/**
 * Fig. 2b of the paper, redrawn for this dataset: pair queries per instance against its
 * number of real images, one point per instance, with the n(n-1)/2 positive-pair curve.
 * Vega-Lite compiles the spec and Vega renders it headless to SVG (no canvas needed).
 */

export interface InstancePoint {
  images: number;
  queries: number;
  split: 'Twin' | 'Twin-Eval';
}

export function queriesPerInstanceSpec(points: InstancePoint[]): Record<string, unknown> {
  const maxImages = points.reduce((m, p) => Math.max(m, p.images), 1);
  const curve = Array.from({ length: maxImages }, (_, i) => ({ images: i + 1, queries: ((i + 1) * i) / 2 }));
  const x = { field: 'images', type: 'quantitative', title: 'real images per instance' };
  const y = { field: 'queries', type: 'quantitative', title: 'pair queries (before subsampling)' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Twin: queries per instance grow quadratically with its images',
    width: 480,
    height: 320,
    layer: [
      {
        data: { values: points },
        mark: { type: 'circle', opacity: 0.45, size: 18 },
        encoding: { x, y, color: { field: 'split', type: 'nominal', title: 'split' } },
      },
      {
        data: { values: curve },
        mark: { type: 'line', color: 'black', strokeDash: [4, 3] },
        encoding: { x, y },
      },
      {
        data: { values: curve.slice(-1).map((p) => ({ ...p, label: 'n(n-1)/2 positive pairs' })) },
        mark: { type: 'text', align: 'right', dx: -4, dy: -10, fontSize: 11 },
        encoding: { x, y, text: { field: 'label' } },
      },
    ],
  };
}

/** Renders the figure to an SVG file. */
export async function writeQueriesPerInstanceSvg(file: string, points: InstancePoint[]): Promise<string> {
  await fs.writeFile(file, await renderSvg(queriesPerInstanceSpec(points)));
  return file;
}

/** A Vega-Lite spec rendered headless to SVG text. */
export async function renderSvg(liteSpec: Record<string, unknown>): Promise<string> {
  // Loaded on demand: Vega is large and only figures need it.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const spec = vegaLite.compile(liteSpec as unknown as Parameters<typeof vegaLite.compile>[0]).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
