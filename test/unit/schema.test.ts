import { describe, expect, it } from 'vitest';
import { pipelineJsonSchema } from '../../engine/schema.js';
import { kinds } from '../../engine/kinds/registry.js';

type Schema = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('pipelineJsonSchema', () => {
  it('is the same on every call', () => {
    expect(JSON.stringify(pipelineJsonSchema())).toBe(JSON.stringify(pipelineJsonSchema()));
  });

  it('is a draft 2020-12 schema that refuses unknown top-level and stage fields', () => {
    const schema: Schema = pipelineJsonSchema();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['name', 'stages']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.stages.additionalProperties.additionalProperties).toBe(false);
    expect(schema.properties.stages.propertyNames.pattern).toBe('^[a-z0-9][a-z0-9_-]*$');
  });

  it('completes uses with the registered kinds and their descriptions', () => {
    const uses = (pipelineJsonSchema() as Schema).properties.stages.additionalProperties.properties.uses;
    expect(uses.enum).toEqual([...kinds.keys()].sort());
    expect(uses.enumDescriptions[uses.enum.indexOf('core/shell')]).toMatch(/Run a bash command/);
  });

  it('adds the core/shell run field to with when uses is core/shell', () => {
    const stage = (pipelineJsonSchema() as Schema).properties.stages.additionalProperties;
    const shell = stage.allOf.find((rule: Schema) => rule.if.properties.uses.const === 'core/shell');
    const withSchema = shell.then.properties.with;
    expect(withSchema.properties.run).toMatchObject({ type: 'string', description: 'The bash script to run.' });
    expect(withSchema.required).toEqual(['run']);
    expect(withSchema.additionalProperties).toBe(false);
  });

  it('lets non-string inputs be given by an expression', () => {
    const schema = pipelineJsonSchema() as Schema;
    const shell = schema.properties.stages.additionalProperties.allOf.find((rule: Schema) => rule.if.properties.uses.const === 'core/shell');
    expect(shell.then.properties.with.properties.env.anyOf[1]).toEqual({ $ref: '#/$defs/expression' });
    expect(schema.$defs.expression.type).toBe('string');
  });

  it('describes fields, with their defaults', () => {
    const stage = (pipelineJsonSchema() as Schema).properties.stages.additionalProperties;
    expect(stage.properties.heartbeat.description).toMatch(/moves to another worker. @default 30s/);
    expect(stage.properties.retry.properties.attempts.description).toMatch(/@default 1/);
  });
});
