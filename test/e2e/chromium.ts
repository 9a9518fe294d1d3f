import { execFileSync } from 'node:child_process';
import { it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (or CHROMIUM_PATH), shared by the browser test files. */
const chromiumPath = (() => {
  try {
    return process.env.CHROMIUM_PATH ?? execFileSync('which', ['chromium']).toString().trim();
  } catch {
    return undefined;
  }
})();

const missing = 'chromium is not installed: `apt-get install chromium` (npm run setup does it), or set CHROMIUM_PATH';

/**
 * `it`, skipped (loudly) when chromium is missing, except under CI, where setup installs it
 * and a missing browser must fail rather than pass by skipping.
 */
export function browserTests(what: string): { skip: boolean; test: typeof it } {
  const skip = !chromiumPath && !process.env.CI;
  if (skip) console.warn(`${what} browser tests SKIPPED: ${missing}`);
  return { skip, test: it.skipIf(skip) as typeof it };
}

export function launchChromium(): Promise<Browser> {
  if (!chromiumPath) throw new Error(missing);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
}
