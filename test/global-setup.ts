import type { TestProject } from 'vitest/node';
import { bundleWorkflows } from '../worker.js';

/** Bundles the interpreter once for every integration test file (webpack takes seconds). */
export default async function setup(project: TestProject): Promise<void> {
  const bundle = await bundleWorkflows();
  project.provide('workflowBundleCode', bundle.code);
  project.provide('workflowBundleSourceMap', bundle.sourceMap);
}

declare module 'vitest' {
  export interface ProvidedContext {
    workflowBundleCode: string;
    workflowBundleSourceMap: string;
  }
}
