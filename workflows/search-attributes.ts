import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { RunState } from '../engine/types.js';
import { SEARCH_ATTRIBUTES } from './messages.js';

export const pipelineKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.pipeline, SearchAttributeType.KEYWORD);
export const stateKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.state, SearchAttributeType.KEYWORD);

/** Keeps the run's state visible in the Web UI's list (only call when the server has the attribute). */
export function upsertRunState(state: RunState): void {
  upsertSearchAttributes([{ key: stateKey, value: state }]);
}
