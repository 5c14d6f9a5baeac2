import { useMemo, useState } from 'react';
import { Link } from 'react-router';
import { useLibraries, useLibraryImages } from '../../libraries/hooks/queries';
import { useJob, useJobItem, useJobItems } from '../../jobs/hooks/queries';
import { useJobEvents } from '../../jobs/hooks/useJobEvents';
import { usePreviewStage } from '../../jobs/hooks/usePreviewStage';
import { Field } from '../../../components/Field';
import { ErrorState, Loading } from '../../../components/States';
import { StatusBadge } from '../../../components/Job';
import { Thumb } from '../../../components/Thumb';
import { ApiError, fieldErrorMap } from '../../../api/errors';
import { isTerminal } from '../../../api/types';
import { checkForm, onStage, toDefinition, type StageForm } from '../../../lib/pipelineForm';
import { matchesName } from '../../../lib/selection';
import { label, shortId } from '../../../lib/format';

const MAX_IMAGES = 3;

/**
 * Tries the stage being edited on up to 3 images before saving: a preview job through the
 * normal workers, followed live; each answer and the filter's verdict show as they arrive.
 * Problems with the stage land on the editor's fields (`onErrors`, keyed like the form).
 */
export function StageTester({ stage, index, onErrors }: { stage: StageForm; index: number; onErrors: (e: Record<string, string>) => void }) {
  const libs = useLibraries({ limit: 200, offset: 0 });
  const [libraryId, setLibraryId] = useState('');
  const [picked, setPicked] = useState<string[]>([]);
  const [query, setQuery] = useState('');
  const images = useLibraryImages(libraryId, libraryId !== '');
  const preview = usePreviewStage();
  const list = useMemo(() => (images.data?.pages[0]?.items ?? []).filter((i) => matchesName(i.filename, query)).slice(0, 50), [images.data, query]);

  const run = () => {
    const form = { name: 'preview', description: '', stages: [stage] };
    const local = checkForm(form);
    if (Object.keys(local).length > 0) {
      onErrors(onStage(local, 'stages.0.', index));
      return;
    }
    preview.mutate(
      { library_id: libraryId, image_ids: picked, stage: toDefinition(form).stages[0]! },
      {
        onError: (e) => {
          // The api points into the preview body (`/stage/prompt`): move that onto this stage's fields.
          if (e instanceof ApiError && e.fieldErrors.length) {
            onErrors(onStage(fieldErrorMap(e.fieldErrors), 'stage.', index));
          }
        },
      },
    );
  };

  return (
    <details className="card" style={{ marginTop: '0.5rem' }}>
      <summary>Try this stage on up to {MAX_IMAGES} images</summary>
      <div className="stack" style={{ marginTop: '0.5rem' }}>
        <div className="filters" style={{ marginBottom: 0 }}>
          <Field label="Library">
            <select
              value={libraryId}
              onChange={(e) => {
                setLibraryId(e.target.value);
                setPicked([]);
              }}
            >
              <option value="">Choose a library…</option>
              {libs.data?.items.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
          </Field>
          {libraryId && (
            <Field label="Search images">
              <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
            </Field>
          )}
        </div>
        {libraryId && images.isPending && <Loading what="Loading images" />}
        {images.isError && <ErrorState error={images.error} retry={() => images.refetch()} />}
        {libraryId && list.length > 0 && (
          <fieldset>
            <legend>
              Images ({picked.length} of {MAX_IMAGES})
            </legend>
            <div className="row">
              {list.map((img) => {
                const on = picked.includes(img.id);
                return (
                  <label key={img.id} className="row" style={{ gap: '0.3rem' }}>
                    <input
                      type="checkbox"
                      checked={on}
                      disabled={!on && picked.length >= MAX_IMAGES}
                      onChange={() => setPicked((p) => (on ? p.filter((id) => id !== img.id) : [...p, img.id]))}
                    />
                    {img.filename}
                  </label>
                );
              })}
            </div>
          </fieldset>
        )}
        {preview.error && !(preview.error instanceof ApiError && preview.error.fieldErrors.length) && (
          <div className="alert error" role="alert">
            {preview.error.message}
          </div>
        )}
        {preview.error instanceof ApiError && preview.error.fieldErrors.length > 0 && (
          <div className="alert error" role="alert">
            The stage has problems: see the fields above.
          </div>
        )}
        <div>
          <button type="button" onClick={run} disabled={picked.length === 0 || preview.isPending}>
            {preview.isPending ? 'Starting…' : `Run on ${picked.length || ''} image${picked.length === 1 ? '' : 's'}`.replace('  ', ' ')}
          </button>
        </div>
        {preview.data && <PreviewRun key={preview.data.id} jobId={preview.data.id} libraryId={libraryId} />}
      </div>
    </details>
  );
}

function PreviewRun({ jobId, libraryId }: { jobId: string; libraryId: string }) {
  const job = useJob(jobId);
  const live = job.data ? !isTerminal(job.data.status) : true;
  useJobEvents(jobId, live);
  const items = useJobItems(jobId, {});
  if (job.isPending || items.isPending) return <Loading what="Starting the preview" />;
  if (job.isError) return <ErrorState error={job.error} retry={() => job.refetch()} />;
  if (items.isError) return <ErrorState error={items.error} retry={() => items.refetch()} />;
  return (
    <div className="stack" aria-live="polite">
      <div className="row">
        <span>
          Preview <Link to={`/jobs/${jobId}`} className="mono">{shortId(jobId)}</Link>
        </span>
        <StatusBadge status={job.data.status} />
      </div>
      {items.data.pages.flatMap((p) => p.items).map((it) => (
        <PreviewItem key={it.item_id} jobId={jobId} itemId={it.item_id} libraryId={libraryId} imageId={it.image_id} name={it.image_name ?? shortId(it.image_id)} status={it.status} />
      ))}
    </div>
  );
}

function PreviewItem(p: { jobId: string; itemId: string; libraryId: string; imageId: string; name: string; status: string }) {
  const q = useJobItem(p.jobId, p.itemId);
  const stage = q.data?.stages[0];
  const answer = stage?.answer;
  return (
    <div className="row" style={{ alignItems: 'flex-start', flexWrap: 'nowrap' }}>
      <div className="thumb-inner" style={{ width: 96, height: 96, flex: 'none' }}>
        <Thumb libraryId={p.libraryId} imageId={p.imageId} />
      </div>
      <div className="grow" style={{ minWidth: 0 }}>
        <strong>{p.name}</strong> <span className={`verdict ${answer?.verdict ?? p.status}`}>{label(answer?.verdict ?? p.status)}</span>
        {answer?.filter_reason && <div className="muted">{answer.filter_reason}</div>}
        {stage?.error && <div className="field-error">{stage.error}</div>}
        {answer ? <pre>{answer.output_json ? JSON.stringify(answer.output_json, null, 2) : answer.output_text}</pre> : <div className="muted">waiting for the answer…</div>}
      </div>
    </div>
  );
}
