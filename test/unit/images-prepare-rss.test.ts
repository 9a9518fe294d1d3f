/**
 * images/prepare's peak memory in a real process: four 39,000,000 x 1 PNGs (38 KB each,
 * under the pixel cap, ~340 MB each to prepare) at concurrency 4 under a 600 MB budget, in a
 * fresh child process whose peak RSS (VmHWM) is read back. Without the budget the four decode
 * together and the peak passes 1.3 GB; with it they take turns. The bound is loose on purpose
 * (memory, not time, so a busy machine does not move it). Linux only: it reads /proc.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../..');
// The child script lives in a temporary folder, so it names every module by its full URL.
const require = createRequire(path.join(repo, 'package.json'));
const at = (file: string) => JSON.stringify(pathToFileURL(file).href);
let dir: string;

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from(type), data])));
  return Buffer.concat([length, Buffer.from(type), data, crc]);
}

/** One grey row of `width` pixels: a few KB of deflate, a full-width row for every libvips buffer. */
function stripPng(width: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey) is already 0
  const row = Buffer.alloc(width + 1, 0x80);
  row[0] = 0;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(row, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

/** Runs in the child: prepares the manifest and prints the peak RSS it added, in MB. */
const childSource = (images: string[]) => `
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from ${at(require.resolve('@temporalio/testing'))};
import { ArtifactStore } from ${at(path.join(repo, 'activities/artifact-store.ts'))};
import { homeLayout } from ${at(path.join(repo, 'activities/home.ts'))};
import { createPrepareImages } from ${at(path.join(repo, 'activities/images/prepare.ts'))};
const status = (field) => Number(new RegExp(field + ':\\\\s+(\\\\d+)').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const home = homeLayout(fs.mkdtempSync(path.join(os.tmpdir(), 'twinflow-rss-')));
const store = new ArtifactStore(home.artifactsDir);
const rows = ${JSON.stringify(images)}.map((p, i) => JSON.stringify({ instance_id: 'i' + i, asins: ['i' + i], title: 't', category: 'c', images: [{ path: p, role: 'listing' }] }));
const instances = await store.putBytes(rows.join('\\n') + '\\n');
fs.writeFileSync('/proc/self/clear_refs', '5');
const start = status('VmRSS');
const result = await new MockActivityEnvironment({ attempt: 1 }).run(createPrepareImages({ store, home }), {
  runId: 'rss', stageId: 'prepare', uses: 'images/prepare', kindVersion: '2', shellEnv: {},
  with: { instances, concurrency: 4, memoryMB: 600 },
});
console.log(JSON.stringify({ addedMB: status('VmHWM') - start, prepared: result.outputs.counts.prepared }));
fs.rmSync(home.root, { recursive: true, force: true });
`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-prepare-rss-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe.skipIf(!existsSync('/proc/self/clear_refs'))('images/prepare peak memory', () => {
  it('keeps four 39,000,000 x 1 PNGs at concurrency 4 within a 600 MB budget, where together they took 1.3 GB', async () => {
    const png = stripPng(39_000_000);
    const images = await Promise.all([0, 1, 2, 3].map(async (i) => {
      const file = path.join(dir, `strip-${i}.png`);
      await fs.writeFile(file, png);
      return file;
    }));
    const script = path.join(dir, 'child.mts');
    await fs.writeFile(script, childSource(images));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
      cwd: repo,
      env: { ...process.env, TWINFLOW_IMAGE_MEMORY_MB: '600' },
    });
    const { addedMB, prepared } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { addedMB: number; prepared: number };
    expect(prepared).toBe(4);
    expect(addedMB).toBeGreaterThan(100); // it did decode: one strip alone adds ~340 MB
    expect(addedMB).toBeLessThan(750);
  }, 120_000);
});
