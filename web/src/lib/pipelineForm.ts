import type { ImageDetail, Pipeline, PipelineDefinition, StageSpec } from '../api/types';
import { checkFilter, fromApi, toApi, type FilterNode } from './filters';

/** One stage as the editor holds it: numbers and the schema as the text typed. */
export interface StageForm {
  key: string;
  name: string;
  prompt: string;
  system_prompt: string;
  model: string;
  image_detail: ImageDetail | '';
  max_tokens: string;
  temperature: string;
  json_schema: string;
  filter: FilterNode | null;
}

export interface PipelineForm {
  name: string;
  description: string;
  stages: StageForm[];
}

export const DEFAULT_MODEL = 'command-a-vision-07-2025';
let seq = 0;

export function emptyStage(n: number): StageForm {
  seq += 1;
  return { key: `s${seq}`, name: `stage-${n}`, prompt: '', system_prompt: '', model: DEFAULT_MODEL, image_detail: '', max_tokens: '', temperature: '', json_schema: '', filter: null };
}

export function emptyPipeline(): PipelineForm {
  return { name: '', description: '', stages: [emptyStage(1)] };
}

export function fromPipeline(p: Pick<Pipeline, 'name' | 'description' | 'stages'>): PipelineForm {
  return {
    name: p.name,
    description: p.description ?? '',
    stages: p.stages.map((s, i) => ({
      ...emptyStage(i + 1),
      name: s.name,
      prompt: s.prompt,
      system_prompt: s.system_prompt ?? '',
      model: s.model ?? DEFAULT_MODEL,
      image_detail: s.image_detail ?? '',
      max_tokens: s.max_tokens == null ? '' : String(s.max_tokens),
      temperature: s.temperature == null ? '' : String(s.temperature),
      json_schema: s.json_schema ? JSON.stringify(s.json_schema, null, 2) : '',
      filter: s.filter ? fromApi(s.filter) : null,
    })),
  };
}

/** What is wrong with a JSON schema as typed, for the structured-output rules the api applies. */
export function checkJsonSchema(text: string): string | undefined {
  if (text.trim() === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return `not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be a JSON object';
  const o = v as Record<string, unknown>;
  if (o.type !== 'object') return 'must be an object schema ("type": "object")';
  if (!Array.isArray(o.required) || o.required.length === 0) return 'needs a non-empty "required" list';
  if (!o.required.every((r) => typeof r === 'string')) return '"required" must list property names';
  if (o.properties !== undefined) {
    if (typeof o.properties !== 'object' || o.properties === null) return '"properties" must be an object';
    const missing = (o.required as string[]).filter((r) => !(r in (o.properties as object)));
    if (missing.length) return `required but not in "properties": ${missing.join(', ')}`;
  }
  return undefined;
}

function hasFieldFilter(n: FilterNode): boolean {
  switch (n.kind) {
    case 'field':
      return true;
    case 'regex':
      return false;
    case 'all':
    case 'any':
      return n.children.some(hasFieldFilter);
    case 'not':
      return hasFieldFilter(n.child);
  }
}

/** Errors the editor can tell before saving, keyed like the api's pointers (`stages.0.prompt`). */
export function checkForm(form: PipelineForm): Record<string, string> {
  const errors: Record<string, string> = {};
  if (form.name.trim() === '') errors.name = 'must not be blank';
  if (form.stages.length === 0) errors.stages = 'add at least one stage';
  const names = new Set<string>();
  form.stages.forEach((s, i) => {
    const at = `stages.${i}`;
    if (s.name.trim() === '') errors[`${at}.name`] = 'must not be blank';
    else if (names.has(s.name.trim())) errors[`${at}.name`] = 'another stage has this name';
    names.add(s.name.trim());
    if (s.prompt.trim() === '') errors[`${at}.prompt`] = 'must not be blank';
    if (s.max_tokens !== '' && !(Number.isInteger(Number(s.max_tokens)) && Number(s.max_tokens) >= 1 && Number(s.max_tokens) <= 8192))
      errors[`${at}.max_tokens`] = 'a whole number from 1 to 8192';
    if (s.temperature !== '' && !(Number(s.temperature) >= 0 && Number(s.temperature) <= 1))
      errors[`${at}.temperature`] = 'a number from 0 to 1';
    const schemaError = checkJsonSchema(s.json_schema);
    if (schemaError) errors[`${at}.json_schema`] = schemaError;
    if (s.filter) {
      checkFilter(s.filter, `${at}.filter`, errors);
      if (hasFieldFilter(s.filter) && s.json_schema.trim() === '')
        errors[`${at}.json_schema`] ??= 'field filters need a JSON schema so the answer is JSON';
    }
  });
  return errors;
}

/** The api body; call after `checkForm` found nothing. */
export function toDefinition(form: PipelineForm): PipelineDefinition {
  return {
    name: form.name.trim(),
    description: form.description.trim() || null,
    stages: form.stages.map((s): StageSpec => {
      const spec: StageSpec = { name: s.name.trim(), prompt: s.prompt, model: s.model.trim() || DEFAULT_MODEL };
      if (s.system_prompt.trim()) spec.system_prompt = s.system_prompt;
      if (s.image_detail) spec.image_detail = s.image_detail;
      if (s.max_tokens !== '') spec.max_tokens = Number(s.max_tokens);
      if (s.temperature !== '') spec.temperature = Number(s.temperature);
      if (s.json_schema.trim() !== '') spec.json_schema = JSON.parse(s.json_schema) as Record<string, never>;
      if (s.filter) spec.filter = toApi(s.filter);
      return spec;
    }),
  };
}

/**
 * Errors keyed for one body (`stage.prompt` of a preview, `stages.0.prompt` of a one-stage form)
 * moved onto stage `index` of the editor (`stages.<index>.prompt`).
 */
export function onStage(errors: Record<string, string>, prefix: 'stage.' | 'stages.0.', index: number): Record<string, string> {
  return Object.fromEntries(Object.entries(errors).map(([k, v]) => [k.startsWith(prefix) ? `stages.${index}.${k.slice(prefix.length)}` : k, v]));
}
