export { pipelineWorkflow } from './pipeline.js';
export { reviewWorkflow } from './review.js';
