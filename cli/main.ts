#!/usr/bin/env -S npx tsx
import { main } from './program.js';

await main(process.argv);
