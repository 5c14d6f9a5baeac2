import { describe, expect, it } from 'vitest';
import type { Pipeline } from '../api/types';
import { fieldErrorMap } from '../api/errors';
import { checkForm, checkJsonSchema, emptyPipeline, fromPipeline, onStage, toDefinition } from './pipelineForm';

const pipeline = {
  name: 'Animal survey',
  description: 'Find animals',
  stages: [
    {
      name: 'detect',
      prompt: 'Is there an animal?',
      model: 'command-a-vision-07-2025',
      json_schema: { type: 'object', properties: { animal: { type: 'boolean' } }, required: ['animal'] },
      filter: { type: 'field', pointer: '/animal', op: 'eq', value: true },
    },
    { name: 'describe', prompt: 'Describe it.', model: 'command-a-vision-07-2025', image_detail: 'high', max_tokens: 300 },
  ],
} as unknown as Pipeline;

describe('pipeline form', () => {
  it('round-trips a pipeline through the editor model', () => {
    const form = fromPipeline(pipeline);
    expect(checkForm(form)).toEqual({});
    expect(toDefinition(form)).toEqual(pipeline);
  });

  it('validates the JSON schema as typed', () => {
    expect(checkJsonSchema('')).toBeUndefined();
    expect(checkJsonSchema('{"type": "object"')).toMatch(/not valid JSON/);
    expect(checkJsonSchema('[]')).toBe('must be a JSON object');
    expect(checkJsonSchema('{"type":"object","required":[]}')).toMatch(/non-empty/);
    expect(checkJsonSchema('{"type":"object","properties":{"a":{}},"required":["b"]}')).toMatch(/b/);
    expect(checkJsonSchema('{"type":"object","properties":{"a":{}},"required":["a"]}')).toBeUndefined();
  });

  it('puts client errors under the keys the api uses for the same fields', () => {
    const form = emptyPipeline();
    form.stages[0]!.max_tokens = '9000';
    form.stages[0]!.filter = { id: 'x', kind: 'field', pointer: '/a', op: 'eq', value: '1' };
    const errors = checkForm(form);
    expect(Object.keys(errors).sort()).toEqual(['name', 'stages.0.json_schema', 'stages.0.max_tokens', 'stages.0.prompt']);
    // the same keys as a 422 from the api would give
    const server = fieldErrorMap([{ path: '/stages/0/prompt', message: 'must not be blank' }, { path: '/name', message: 'taken' }]);
    expect(Object.keys(server).every((k) => k in errors)).toBe(true);
  });

  it('rejects duplicate stage names', () => {
    const form = fromPipeline(pipeline);
    form.stages[1]!.name = 'detect';
    expect(checkForm(form)['stages.1.name']).toMatch(/another stage/);
  });
});

describe('stage tester errors', () => {
  it('moves a preview 422 onto the edited stage', () => {
    const server = fieldErrorMap([{ path: '/stage/prompt', message: 'must not be blank' }, { path: '/stage/filter/pattern', message: 'bad regex' }, { path: '/image_ids', message: 'too many' }]);
    expect(onStage(server, 'stage.', 2)).toEqual({ 'stages.2.prompt': 'must not be blank', 'stages.2.filter.pattern': 'bad regex', image_ids: 'too many' });
    expect(onStage({ 'stages.0.name': 'x' }, 'stages.0.', 1)).toEqual({ 'stages.1.name': 'x' });
  });
});
