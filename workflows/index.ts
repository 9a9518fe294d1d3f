export { pipelineWorkflow } from './pipeline.js';
