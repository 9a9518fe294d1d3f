import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page');

export interface PageAssets {
  html: string;
  js: string;
  css: string;
}

let assets: Promise<PageAssets> | undefined;

/** The page, its script bundled from TypeScript by esbuild the first time it is asked for. */
export function pageAssets(): Promise<PageAssets> {
  assets ??= (async () => {
    const bundle = await build({
      entryPoints: [path.join(pageDir, 'main.ts')], bundle: true, write: false, format: 'iife', target: 'es2022', logLevel: 'silent',
    });
    const [html, css] = await Promise.all([fs.readFile(path.join(pageDir, 'index.html'), 'utf8'), fs.readFile(path.join(pageDir, 'style.css'), 'utf8')]);
    return { html, css, js: bundle.outputFiles[0]!.text };
  })();
  // A failed build is tried again on the next request (after the page source is fixed).
  assets.catch(() => (assets = undefined));
  return assets;
}
