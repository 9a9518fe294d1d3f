// Lint: typescript-eslint's recommended rules, plus the determinism boundary: workflow
// code may not import Node built-ins or native/side-effect modules (DESIGN.md section 2).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const banned = [
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
  'sharp', 'onnxruntime-node', 'execa', 'fs-extra', '@temporalio/worker', '@temporalio/client', '@temporalio/activity',
];

export default tseslint.config(
  { ignores: ['node_modules/', '.venv/', '.twinflow/', '.cache/', 'data/', 'dist/', 'coverage/', 'gpu/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: banned.map((name) => ({ name, message: 'workflow code must be deterministic: do side effects in an activity' })),
        patterns: [
          { group: ['../activities/**'], allowTypeImports: true, message: 'workflows import activities as types only (import type ...)' },
          // The interpreter evaluates expressions and checks its own size; every other engine module may touch the file system.
          { group: ['../engine/**', '!../engine/expressions.js', '!../engine/limits.js', '!../engine/failures.js'], allowTypeImports: true, message: 'workflows import only engine/expressions.js, engine/limits.js and engine/failures.js (pure) and types' },
        ],
      }],
    },
  },
);
