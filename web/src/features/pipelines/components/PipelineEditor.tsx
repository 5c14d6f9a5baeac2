import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { usePipeline } from '../hooks/queries';
import { useSavePipeline } from '../hooks/useSavePipeline';
import { FilterBuilder } from './FilterBuilder';
import { StageTester } from './StageTester';
import { Field } from '../../../components/Field';
import { ErrorState, Loading } from '../../../components/States';
import { ApiError, fieldErrorMap } from '../../../api/errors';
import { IMAGE_DETAILS } from '../../../api/types';
import { checkForm, checkJsonSchema, emptyPipeline, emptyStage, fromPipeline, toDefinition, type PipelineForm, type StageForm } from '../../../lib/pipelineForm';

/** Create (`/pipelines/new`) or edit (`/pipelines/:id`, saving a new version) a pipeline. */
export default function PipelineEditorPage() {
  const { pipelineId } = useParams();
  const q = usePipeline(pipelineId ?? '', pipelineId !== undefined);
  if (pipelineId === undefined) return <Editor initial={emptyPipeline()} />;
  if (q.isPending) return <Loading what="Loading pipeline" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  return <Editor key={`${q.data.id}:${q.data.version}`} id={q.data.id} version={q.data.version} initial={fromPipeline(q.data)} />;
}

function Editor({ id, version, initial }: { id?: string; version?: number; initial: PipelineForm }) {
  const navigate = useNavigate();
  const [form, setForm] = useState(initial);
  const [submitted, setSubmitted] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const save = useSavePipeline((p) => navigate(`/pipelines/${p.id}`, { replace: true, state: { saved: p.version } }));

  const clientErrors = useMemo(() => checkForm(form), [form]);
  // The schema is checked as you type; the rest once a save was tried.
  const liveErrors = useMemo(() => {
    const out: Record<string, string> = {};
    form.stages.forEach((s, i) => {
      const e = checkJsonSchema(s.json_schema);
      if (e) out[`stages.${i}.json_schema`] = e;
    });
    return out;
  }, [form]);
  const errors = { ...(submitted ? clientErrors : liveErrors), ...serverErrors };

  useEffect(() => {
    if (save.error instanceof ApiError && save.error.fieldErrors.length > 0) setServerErrors(fieldErrorMap(save.error.fieldErrors));
  }, [save.error]);

  const clear = (prefix: string) =>
    setServerErrors((e) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== prefix && !k.startsWith(`${prefix}.`))));
  const setStage = (i: number, patch: Partial<StageForm>) => {
    Object.keys(patch).forEach((k) => clear(`stages.${i}.${k}`));
    setForm((f) => ({ ...f, stages: f.stages.map((s, j) => (j === i ? { ...s, ...patch } : s)) }));
  };
  const moveStage = (i: number, by: number) =>
    setForm((f) => {
      const stages = [...f.stages];
      const [s] = stages.splice(i, 1);
      stages.splice(i + by, 0, s!);
      return { ...f, stages };
    });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    setServerErrors({});
    if (Object.keys(clientErrors).length > 0) {
      requestAnimationFrame(() => document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
      return;
    }
    save.mutate({ ...(id ? { id } : {}), body: toDefinition(form) });
  };
  useEffect(() => {
    if (Object.keys(serverErrors).length) document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [serverErrors]);

  const summary = Object.entries(errors);
  return (
    <form onSubmit={onSubmit} noValidate aria-label="Pipeline editor">
      <p>
        <Link to="/pipelines">← Pipelines</Link>
      </p>
      <div className="page-head">
        <h1>{id ? `Edit pipeline (version ${version})` : 'New pipeline'}</h1>
        <button type="submit" className="primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : id ? 'Save as new version' : 'Create pipeline'}
        </button>
      </div>
      {id && <p className="muted">Saving makes a new version; jobs already submitted keep the version they started with.</p>}
      {save.isSuccess && <div className="alert ok" role="status">Saved version {save.data.version}.</div>}
      {submitted && summary.length > 0 && (
        <div className="alert error" role="alert">
          <strong>{summary.length === 1 ? '1 field needs attention' : `${summary.length} fields need attention`}</strong>
          <ul style={{ margin: '0.25rem 0 0' }}>
            {summary.map(([k, m]) => (
              <li key={k}>
                <strong>{fieldLabel(k)}</strong>: {m}
              </li>
            ))}
          </ul>
        </div>
      )}
      {save.error && !(save.error instanceof ApiError && save.error.fieldErrors.length > 0) && (
        <div className="alert error" role="alert">{save.error.message}</div>
      )}
      <div className="card fields">
        <Field label="Name" error={errors.name}>
          <input value={form.name} onChange={(e) => { clear('name'); setForm({ ...form, name: e.target.value }); }} maxLength={200} required />
        </Field>
        <Field label="Description" error={errors.description}>
          <input value={form.description} onChange={(e) => { clear('description'); setForm({ ...form, description: e.target.value }); }} maxLength={2000} />
        </Field>
      </div>
      <h2>Stages</h2>
      {errors.stages && <div className="field-error">{errors.stages}</div>}
      <div className="stack">
        {form.stages.map((s, i) => (
          <StageEditor
            key={s.key}
            stage={s}
            index={i}
            count={form.stages.length}
            errors={errors}
            onChange={(patch) => setStage(i, patch)}
            onErrors={(e) => setServerErrors((prev) => ({ ...prev, ...e }))}
            onMove={(by) => moveStage(i, by)}
            onRemove={() => setForm((f) => ({ ...f, stages: f.stages.filter((_, j) => j !== i) }))}
          />
        ))}
      </div>
      <div className="row" style={{ marginTop: '0.75rem' }}>
        <button type="button" onClick={() => setForm((f) => ({ ...f, stages: [...f.stages, emptyStage(f.stages.length + 1)] }))} disabled={form.stages.length >= 10}>
          Add stage
        </button>
        <span className="muted">Up to 10 stages; only images that pass a stage's filter go on to the next.</span>
      </div>
    </form>
  );
}

/** `stages.0.filter.filters.1.pattern` → `Stage 1 › filter › condition 2 › pattern`. */
function fieldLabel(key: string): string {
  if (key === 'root') return 'Pipeline';
  const parts = key.split('.');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i += 1) {
    const p = parts[i]!;
    const next = parts[i + 1];
    if (p === 'stages' && next !== undefined && /^\d+$/.test(next)) {
      out.push(`Stage ${Number(next) + 1}`);
      i += 1;
    } else if (p === 'filters' && next !== undefined && /^\d+$/.test(next)) {
      out.push(`condition ${Number(next) + 1}`);
      i += 1;
    } else out.push(p.replace(/_/g, ' '));
  }
  return out.join(' › ');
}

function StageEditor({
  stage,
  index,
  count,
  errors,
  onChange,
  onErrors,
  onMove,
  onRemove,
}: {
  stage: StageForm;
  index: number;
  count: number;
  errors: Record<string, string>;
  onChange: (patch: Partial<StageForm>) => void;
  onErrors: (e: Record<string, string>) => void;
  onMove: (by: number) => void;
  onRemove: () => void;
}) {
  const at = `stages.${index}`;
  const e = (k: string) => errors[`${at}.${k}`];
  return (
    <section className="stage" aria-labelledby={`${stage.key}-title`}>
      <header>
        <h3 id={`${stage.key}-title`}>
          Stage {index + 1}: {stage.name || 'unnamed'}
        </h3>
        <button type="button" onClick={() => onMove(-1)} disabled={index === 0} aria-label={`Move stage ${index + 1} up`}>
          ↑
        </button>
        <button type="button" onClick={() => onMove(1)} disabled={index === count - 1} aria-label={`Move stage ${index + 1} down`}>
          ↓
        </button>
        <button type="button" className="danger" onClick={onRemove} disabled={count === 1}>
          Remove
        </button>
      </header>
      {errors[at] && <div className="field-error">{errors[at]}</div>}
      <div className="stack">
        <div className="fields">
          <Field label="Name" error={e('name')}>
            <input value={stage.name} onChange={(ev) => onChange({ name: ev.target.value })} maxLength={100} />
          </Field>
          <Field label="Model" error={e('model')}>
            <input value={stage.model} onChange={(ev) => onChange({ model: ev.target.value })} className="mono" />
          </Field>
          <Field label="Image detail" error={e('image_detail')}>
            <select value={stage.image_detail} onChange={(ev) => onChange({ image_detail: ev.target.value as StageForm['image_detail'] })}>
              <option value="">default</option>
              {IMAGE_DETAILS.map((d) => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Max tokens" error={e('max_tokens')} hint="1 to 8192; empty for the model's default">
            <input inputMode="numeric" value={stage.max_tokens} onChange={(ev) => onChange({ max_tokens: ev.target.value })} />
          </Field>
          <Field label="Temperature" error={e('temperature')} hint="0 to 1; empty for the default">
            <input inputMode="decimal" value={stage.temperature} onChange={(ev) => onChange({ temperature: ev.target.value })} />
          </Field>
        </div>
        <Field label="Prompt" error={e('prompt')}>
          <textarea value={stage.prompt} onChange={(ev) => onChange({ prompt: ev.target.value })} rows={3} />
        </Field>
        <Field label="System prompt (optional)" error={e('system_prompt')}>
          <textarea value={stage.system_prompt} onChange={(ev) => onChange({ system_prompt: ev.target.value })} rows={2} />
        </Field>
        <Field label="JSON schema of the answer (optional)" error={e('json_schema')} hint='An object schema with a non-empty "required" list; needed for field filters.'>
          <textarea value={stage.json_schema} onChange={(ev) => onChange({ json_schema: ev.target.value })} rows={5} className="mono" spellCheck={false} />
        </Field>
        <div>
          <div className="field-label">Filter</div>
          <FilterBuilder root={stage.filter} path={`${at}.filter`} errors={errors} onChange={(filter) => onChange({ filter })} />
        </div>
        <StageTester stage={stage} index={index} onErrors={onErrors} />
      </div>
    </section>
  );
}
