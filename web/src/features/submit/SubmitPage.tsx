import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { useVirtualizer } from '@tanstack/react-virtual';
import { usePipelines, usePipeline } from '../pipelines/hooks/queries';
import { useLibraries, useLibrary, useLibraryImages } from '../libraries/hooks/queries';
import { useSubmitJob } from '../jobs/hooks/useSubmitJob';
import { SubmissionKeys } from './idempotency';
import { useJobEstimate } from './useJobEstimate';
import { EstimatePanel } from './EstimatePanel';
import { Field } from '../../components/Field';
import { Confirm } from '../../components/Confirm';
import { ErrorState, Loading } from '../../components/States';
import { ApiError, fieldErrorMap } from '../../api/errors';
import { PRIORITIES, type Image, type Priority, type SubmitJob } from '../../api/types';
import { useUrlState } from '../../lib/urlState';
import { matchesName, parseRanges, setRange } from '../../lib/selection';
import { num, shortId } from '../../lib/format';
import { duration, usdRange } from '../../lib/estimate';

const DEFAULTS = { pipeline: '', library: '' };

export function SubmitPage() {
  const [url, setUrl] = useUrlState(DEFAULTS);
  const pipes = usePipelines({ limit: 200, offset: 0 });
  const libs = useLibraries({ limit: 200, offset: 0 });
  const pipeline = usePipeline(url.pipeline, url.pipeline !== '');
  const library = useLibrary(url.library);
  const [mode, setMode] = useState<'all' | 'some'>('all');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [priority, setPriority] = useState<Priority>('normal');
  const [confirming, setConfirming] = useState(false);
  const submissionKeys = useRef(new SubmissionKeys());
  const submit = useSubmitJob();

  const imageCount = mode === 'all' ? (library.data?.image_count ?? 0) : selected.size;
  const stageCount = pipeline.data?.stages.length ?? 0;
  const body: SubmitJob | undefined =
    url.pipeline && url.library ? { pipeline_id: url.pipeline, library_id: url.library, priority, ...(mode === 'some' ? { image_ids: [...selected] } : {}) } : undefined;
  const errors = submit.error instanceof ApiError ? fieldErrorMap(submit.error.fieldErrors) : {};
  const estimate = useJobEstimate(body && imageCount > 0 ? body : undefined);

  // A double click fires twice before React re-renders the button as busy.
  const inFlight = useRef(false);
  const send = () => {
    if (!body || inFlight.current) return;
    inFlight.current = true;
    submit.mutate(
      { body, idempotencyKey: submissionKeys.current.for(body) },
      {
        onSuccess: () => {
          submissionKeys.current.reset();
          setConfirming(false);
        },
        onSettled: () => {
          inFlight.current = false;
        },
      },
    );
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit.reset();
    setConfirming(true);
  };

  if (pipes.isPending || libs.isPending) return <Loading what="Loading pipelines and libraries" />;
  if (pipes.isError) return <ErrorState error={pipes.error} retry={() => pipes.refetch()} />;
  if (libs.isError) return <ErrorState error={libs.error} retry={() => libs.refetch()} />;
  if (pipes.data.items.length === 0 || libs.data.items.length === 0) {
    return (
      <>
        <h1>Submit a job</h1>
        <div className="alert warn">
          A job runs a pipeline over a library's images. First{' '}
          {libs.data.items.length === 0 && <Link to="/libraries">create a library and upload images</Link>}
          {libs.data.items.length === 0 && pipes.data.items.length === 0 && ' and '}
          {pipes.data.items.length === 0 && <Link to="/pipelines/new">create a pipeline</Link>}.
        </div>
      </>
    );
  }

  return (
    <form onSubmit={onSubmit} aria-label="Submit a job">
      <h1>Submit a job</h1>
      {submit.isSuccess && (
        <div className="alert ok" role="status">
          Job submitted: <Link to={`/jobs/${submit.data.id}`}>follow job {shortId(submit.data.id)} live</Link>.
        </div>
      )}
      <div className="card fields">
        <Field label="Pipeline" error={errors.pipeline_id}>
          <select value={url.pipeline} onChange={(e) => setUrl({ pipeline: e.target.value }, { replace: true })} required>
            <option value="">Choose a pipeline…</option>
            {pipes.data.items.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} ({p.stages.length} {p.stages.length === 1 ? 'stage' : 'stages'})
              </option>
            ))}
          </select>
        </Field>
        <Field label="Library" error={errors.library_id}>
          <select
            value={url.library}
            onChange={(e) => {
              setSelected(new Set());
              setUrl({ library: e.target.value }, { replace: true });
            }}
            required
          >
            <option value="">Choose a library…</option>
            {libs.data.items.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name} ({num(l.image_count)} images)
              </option>
            ))}
          </select>
        </Field>
        <Field label="Priority" error={errors.priority}>
          <select value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
      </div>
      {url.library && (
        <fieldset className="card" style={{ marginTop: '0.75rem' }}>
          <legend>Images</legend>
          <div className="row">
            <label>
              <input type="radio" name="mode" checked={mode === 'all'} onChange={() => setMode('all')} /> All {library.data ? num(library.data.image_count) : ''} images
            </label>
            <label>
              <input type="radio" name="mode" checked={mode === 'some'} onChange={() => setMode('some')} /> Choose images
            </label>
          </div>
          {errors.image_ids && <div className="field-error">{errors.image_ids}</div>}
          {mode === 'some' && <ImagePicker libraryId={url.library} selected={selected} onChange={setSelected} />}
        </fieldset>
      )}
      {body && imageCount > 0 && (
        <div className="card" style={{ marginTop: '0.75rem' }}>
          <h2 style={{ marginTop: 0 }}>Estimate</h2>
          <EstimatePanel estimate={estimate} />
        </div>
      )}
      {submit.error && !confirming && <div className="alert error" role="alert">{submit.error.message}</div>}
      <div className="row" style={{ marginTop: '0.75rem' }}>
        <button type="submit" className="primary" disabled={!body || imageCount === 0 || submit.isPending}>
          Review and submit
        </button>
        {body && (
          <span className="muted">
            {num(imageCount)} images × {stageCount} stages
          </span>
        )}
      </div>
      <Confirm open={confirming} title="Submit this job?" confirmLabel="Submit job" busy={submit.isPending} onCancel={() => setConfirming(false)} onConfirm={send}>
        <p>
          <strong>{pipeline.data?.name}</strong> on <strong>{library.data?.name}</strong>, priority {priority}.
        </p>
        <p>
          {num(imageCount)} images × {stageCount} stages: at most <strong>{num(imageCount * stageCount)}</strong> model calls (fewer when filters stop images early).
        </p>
        {estimate.data && !estimate.isPlaceholderData && (
          <p>
            Estimated cost <strong>{usdRange(estimate.data.cost_usd)}</strong>, done in about <strong>{duration(estimate.data.eta_seconds)}</strong>.
          </p>
        )}
        {submit.error && <div className="alert error" role="alert">{submit.error.message}</div>}
      </Confirm>
    </form>
  );
}

function ImagePicker({ libraryId, selected, onChange }: { libraryId: string; selected: Set<string>; onChange: (s: Set<string>) => void }) {
  const q = useLibraryImages(libraryId);
  const [query, setQuery] = useState('');
  const [ranges, setRanges] = useState('');
  const [rangeError, setRangeError] = useState<string>();
  const lastClicked = useRef<number | null>(null);
  const all = useMemo(() => q.data?.pages.flatMap((p) => p.items) ?? [], [q.data]);
  const total = q.data?.pages[0]?.total ?? 0;
  const loading = q.hasNextPage || q.isFetchingNextPage;
  // Selection works on the whole library, so every page is read (200 per request).
  const { hasNextPage, isFetchingNextPage, isError, fetchNextPage } = q;
  useEffect(() => {
    if (hasNextPage && !isFetchingNextPage && !isError) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, isError, fetchNextPage]);
  const shown = useMemo(() => (query.trim() ? all.filter((i) => matchesName(i.filename, query)) : all), [all, query]);
  const shownIds = useMemo(() => shown.map((i) => i.id), [shown]);

  if (q.isPending) return <Loading what="Loading images" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const applyRanges = () => {
    const r = parseRanges(ranges, shown.length);
    setRangeError(r.error);
    if (!r.error) onChange(new Set([...selected, ...r.indices.map((i) => shownIds[i]!)]));
  };
  return (
    <div className="stack" style={{ marginTop: '0.5rem' }}>
      {loading && (
        <div className="muted" role="status">
          Loaded {num(all.length)} of {num(total)} images…
        </div>
      )}
      <div className="filters" style={{ marginBottom: 0 }}>
        <Field label="Search by name">
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="e.g. cat" />
        </Field>
        <Field label="Positions" error={rangeError} hint={`e.g. 1-20, 25 (of the ${num(shown.length)} listed)`}>
          <input value={ranges} onChange={(e) => setRanges(e.target.value)} onKeyDown={(e) => { if (e.key === 'Enter') { e.preventDefault(); applyRanges(); } }} />
        </Field>
        <button type="button" onClick={applyRanges}>
          Select positions
        </button>
        <button type="button" onClick={() => onChange(new Set([...selected, ...shownIds]))}>
          Select {query ? 'matches' : 'all'} ({num(shown.length)})
        </button>
        <button type="button" onClick={() => onChange(query ? new Set([...selected].filter((id) => !shownIds.includes(id))) : new Set())}>
          Clear {query ? 'matches' : 'all'}
        </button>
      </div>
      <div aria-live="polite">
        <strong>{num(selected.size)}</strong> of {num(total)} selected. Shift-click to select a range.
      </div>
      <CheckList
        images={shown}
        selected={selected}
        onToggle={(index, img, shift) => {
          const on = !selected.has(img.id);
          if (shift && lastClicked.current !== null) onChange(setRange(selected, shownIds, lastClicked.current, index, on));
          else {
            const next = new Set(selected);
            if (on) next.add(img.id);
            else next.delete(img.id);
            onChange(next);
          }
          lastClicked.current = index;
        }}
      />
    </div>
  );
}

function CheckList({ images, selected, onToggle }: { images: Image[]; selected: Set<string>; onToggle: (index: number, img: Image, shift: boolean) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({ count: images.length, getScrollElement: () => ref.current, estimateSize: () => 36, overscan: 8 });
  return (
    <div ref={ref} className="grid-scroll" style={{ height: 'min(50vh, 480px)' }} role="group" aria-label="Images to analyse">
      <div style={{ height: v.getTotalSize(), position: 'relative' }}>
        {v.getVirtualItems().map((row) => {
          const img = images[row.index]!;
          return (
            <label key={img.id} className="row" style={{ position: 'absolute', top: row.start, left: 0, right: 0, height: 36, padding: '0 0.6rem', flexWrap: 'nowrap' }}>
              <input
                type="checkbox"
                checked={selected.has(img.id)}
                onChange={() => undefined}
                onClick={(e) => onToggle(row.index, img, e.shiftKey)}
              />
              <span className="muted mono" style={{ minWidth: '3.5rem' }}>
                {row.index + 1}
              </span>
              <span style={{ overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}>{img.filename}</span>
            </label>
          );
        })}
      </div>
    </div>
  );
}
