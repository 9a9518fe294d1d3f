// Writes the README's stage kind tables from the registry (engine/kind-docs.ts).
// `--check` fails, changing nothing, when the README's tables are not what the registry says.
import fs from 'node:fs';
import { kindFamilies, kindList } from '../engine/kinds/registry.js';
import { missingTables, writeKindTables } from '../engine/kind-docs.js';

const readme = fs.readFileSync('README.md', 'utf8');
const unlisted = kindList.filter((k) => !kindFamilies.some((f) => f.kinds.includes(k))).map((k) => k.uses);
const missing = missingTables(readme, kindFamilies);
if (unlisted.length || missing.length) {
  if (unlisted.length) console.error(`kinds in no family of engine/kinds/registry.ts: ${unlisted.join(', ')}`);
  if (missing.length) console.error(`README.md lacks the markers <!-- kinds:ID --> <!-- /kinds:ID --> for: ${missing.join(', ')}`);
  process.exit(1);
}
const written = writeKindTables(readme, kindFamilies);
if (process.argv.includes('--check')) {
  if (written !== readme) {
    console.error('the kind tables in README.md are stale: run npm run kinds:readme');
    process.exit(1);
  }
} else if (written !== readme) {
  fs.writeFileSync('README.md', written);
  console.log('README.md: kind tables written');
}
