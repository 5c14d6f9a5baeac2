import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useJobHistory } from '../hooks/queries';
import { useTenantStream } from '../hooks/TenantEvents';
import { useLibraries } from '../../libraries/hooks/queries';
import { usePipelines } from '../../pipelines/hooks/queries';
import { useUrlState } from '../../../lib/urlState';
import { Empty, ErrorState, Loading, MutationError } from '../../../components/States';
import { Confirm } from '../../../components/Confirm';
import { useBulkCancelJobs } from '../hooks/useBulkCancelJobs';
import { useBulkRetryJobs } from '../hooks/useBulkRetryJobs';
import { Pager } from '../../../components/Pager';
import { Field } from '../../../components/Field';
import { ProgressBar, StatusBadge } from '../../../components/Job';
import { JOB_STATUSES, type JobHistorySort } from '../../../api/types';
import { age, compact, label, num, shortId } from '../../../lib/format';
import { ariaSort, DEFAULT_SORT, nextSort, parseSort, stageSummary, type SortColumn } from '../../../lib/jobList';

const PAGE = 50;
const DEFAULTS = { status: '', pipeline: '', library: '', from: '', to: '', previews: '', sort: '', page: 1 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `YYYY-MM-DD` from a date input as the start of that day in the browser's time zone. */
function dayStart(day: string, plusDays = 0): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() + plusDays);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function JobsPage() {
  const [url, setUrl] = useUrlState(DEFAULTS);
  const sort = parseSort(url.sort);
  const params = {
    limit: PAGE,
    offset: (url.page - 1) * PAGE,
    ...(url.status ? { status: url.status } : {}),
    ...(url.pipeline ? { pipeline_id: url.pipeline } : {}),
    ...(url.library ? { library_id: url.library } : {}),
    ...(url.from ? { created_from: dayStart(url.from) } : {}),
    ...(url.to ? { created_to: dayStart(url.to, 1) } : {}),
    ...(url.previews ? { include_previews: true } : {}),
    ...(sort !== DEFAULT_SORT ? { sort } : {}),
  };
  const sortBy = (column: SortColumn) => {
    const next = nextSort(sort, column);
    setUrl({ sort: next === DEFAULT_SORT ? '' : next });
  };
  const stream = useTenantStream();
  const q = useJobHistory(params, stream !== 'live');
  const libs = useLibraries({ limit: 200, offset: 0 });
  const pipes = usePipelines({ limit: 200, offset: 0 });
  const libName = new Map(libs.data?.items.map((l) => [l.id, l.name]));
  const filtered = url.status || url.pipeline || url.library || url.from || url.to;
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const pageIds = q.data?.items.map((j) => j.id) ?? [];
  const allOnPage = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <>
      <div className="page-head">
        <h1>
          Jobs <span className="muted" style={{ fontSize: '0.85rem', fontWeight: 400 }} role="status">{stream === 'live' ? '● live' : stream === 'reconnecting' ? 'reconnecting…' : ''}</span>
        </h1>
        <div className="row">
          <JobSearch />
          <Link className="button primary" to="/submit">
            Submit a job
          </Link>
        </div>
      </div>
      <form className="filters" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
        <Field label="Status">
          <select value={url.status} onChange={(e) => setUrl({ status: e.target.value })}>
            <option value="">any</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {label(s)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Pipeline">
          <select value={url.pipeline} onChange={(e) => setUrl({ pipeline: e.target.value })}>
            <option value="">any</option>
            {pipes.data?.items.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Library">
          <select value={url.library} onChange={(e) => setUrl({ library: e.target.value })}>
            <option value="">any</option>
            {libs.data?.items.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Created from">
          <input type="date" value={url.from} onChange={(e) => setUrl({ from: e.target.value })} />
        </Field>
        <Field label="Created to">
          <input type="date" value={url.to} onChange={(e) => setUrl({ to: e.target.value })} />
        </Field>
        <label className="row" style={{ alignSelf: 'flex-end', minHeight: '2.25rem' }}>
          <input type="checkbox" checked={url.previews !== ''} onChange={(e) => setUrl({ previews: e.target.checked ? '1' : '' })} /> Show stage previews
        </label>
        {filtered && (
          <button type="button" onClick={() => setUrl({ status: '', pipeline: '', library: '', from: '', to: '' })}>
            Clear filters
          </button>
        )}
      </form>
      <BulkBar selected={selected} onDone={() => setSelected(new Set())} />
      {q.isPending ? (
        <Loading what="Loading jobs" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : q.data.items.length === 0 ? (
        <Empty>{filtered ? 'No jobs match these filters.' : <>No jobs yet. <Link to="/submit">Submit the first one</Link>.</>}</Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table aria-busy={q.isFetching}>
              <thead>
                <tr>
                  <th>
                    <input
                      type="checkbox"
                      aria-label="Select every job on this page"
                      checked={allOnPage}
                      onChange={() => setSelected((s) => (allOnPage ? new Set([...s].filter((id) => !pageIds.includes(id))) : new Set([...s, ...pageIds])))}
                    />
                  </th>
                  <th>Job</th>
                  <SortHeader column="status" sort={sort} onSort={sortBy}>Status</SortHeader>
                  <th>Progress</th>
                  <th>Stages</th>
                  <th className="num hide-narrow">Tokens in / out</th>
                  <th className="hide-narrow">Pipeline</th>
                  <th className="hide-narrow">Library</th>
                  <SortHeader column="finished_at" sort={sort} onSort={sortBy} className="num hide-narrow">Finished</SortHeader>
                  <SortHeader column="created_at" sort={sort} onSort={sortBy} className="num">Age</SortHeader>
                </tr>
              </thead>
              <tbody>
                {q.data.items.map((j) => (
                  <tr key={j.id}>
                    <td>
                      <input type="checkbox" aria-label={`Select job ${j.id}`} checked={selected.has(j.id)} onChange={() => toggle(j.id)} />
                    </td>
                    <td>
                      <Link to={`/jobs/${j.id}`} className="mono" aria-label={`Job ${j.id}`}>
                        {shortId(j.id)}
                      </Link>
                    </td>
                    <td>
                      <StatusBadge status={j.status} /> {j.preview && <span className="status queued">preview</span>}
                    </td>
                    <td style={{ minWidth: '7rem' }}>
                      <ProgressBar percent={j.percent_complete} label={`Job ${shortId(j.id)} progress`} />
                      <span className="muted" style={{ fontSize: '0.8rem' }}>
                        {Math.floor(j.percent_complete)}% of {num(j.counts.total)}
                      </span>
                    </td>
                    <td className="stages" title={`${num(j.counts.passed)} passed, ${num(j.counts.filtered_out)} filtered out, ${num(j.counts.failed)} failed`}>
                      {stageSummary(j.stages)}
                    </td>
                    <td className="num hide-narrow" title={`${num(j.usage.input_tokens)} in, ${num(j.usage.output_tokens)} out`}>
                      {compact(j.usage.input_tokens)} / {compact(j.usage.output_tokens)}
                    </td>
                    <td className="hide-narrow">{j.pipeline_name}</td>
                    <td className="hide-narrow">{libName.get(j.library_id) ?? shortId(j.library_id)}</td>
                    <td className="num hide-narrow" title={j.finished_at ? new Date(j.finished_at).toLocaleString() : undefined}>
                      {j.finished_at ? age(j.finished_at) : '—'}
                    </td>
                    <td className="num" title={new Date(j.created_at).toLocaleString()}>
                      {age(j.created_at)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={url.page} pageSize={PAGE} total={q.data.total} onPage={(p) => setUrl({ page: p })} />
        </>
      )}
    </>
  );
}

/** A column header that sorts the list by its field; the order lives in the URL. */
function SortHeader({ column, sort, onSort, className, children }: { column: SortColumn; sort: JobHistorySort; onSort: (c: SortColumn) => void; className?: string; children: string }) {
  const state = ariaSort(sort, column);
  return (
    <th className={className} aria-sort={state}>
      <button type="button" className="link sort" onClick={() => onSort(column)}>
        {children}
        <span aria-hidden="true">{state === 'ascending' ? ' ▲' : state === 'descending' ? ' ▼' : ''}</span>
      </button>
    </th>
  );
}

function JobSearch() {
  const navigate = useNavigate();
  const [id, setId] = useState('');
  const [error, setError] = useState<string>();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = id.trim();
    if (!UUID.test(v)) {
      setError('a job id looks like 0193…-…');
      return;
    }
    setError(undefined);
    navigate(`/jobs/${v.toLowerCase()}`);
  };
  return (
    <form role="search" onSubmit={submit} className="row" aria-label="Find a job by id">
      <Field label={<span className="sr-only">Job id</span>} error={error}>
        <input value={id} onChange={(e) => setId(e.target.value)} placeholder="Job id" className="mono" size={20} />
      </Field>
      <button type="submit">Find</button>
    </form>
  );
}

const BULK_MAX = 100;

/** Cancel or retry the selected jobs (up to 100 a request), with what happened to each. */
function BulkBar({ selected, onDone }: { selected: Set<string>; onDone: () => void }) {
  const cancel = useBulkCancelJobs();
  const retry = useBulkRetryJobs();
  const [confirm, setConfirm] = useState<'cancel' | 'retry' | null>(null);
  const busy = cancel.isPending || retry.isPending;
  const last = cancel.data ?? retry.data;
  const error = cancel.error ?? retry.error;
  if (selected.size === 0 && !last && !error) return null;
  const ids = [...selected].slice(0, BULK_MAX);
  const counts = last?.results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.outcome]: (acc[r.outcome] ?? 0) + 1 }), {});
  const run = () => {
    const m = confirm === 'cancel' ? cancel : retry;
    cancel.reset();
    retry.reset();
    m.mutate(ids, { onSuccess: () => { setConfirm(null); onDone(); } });
  };
  return (
    <div className="card row" role="region" aria-label="Selected jobs" style={{ marginBottom: '0.75rem' }}>
      {selected.size > 0 && (
        <>
          <strong>{num(selected.size)} selected</strong>
          {selected.size > BULK_MAX && <span className="muted">(the first {BULK_MAX} are sent)</span>}
          <button type="button" className="danger" onClick={() => setConfirm('cancel')} disabled={busy}>
            Cancel selected
          </button>
          <button type="button" onClick={() => setConfirm('retry')} disabled={busy}>
            Retry failed items of selected
          </button>
          <button type="button" className="link" onClick={onDone}>
            Clear selection
          </button>
        </>
      )}
      {counts && (
        <span role="status">
          {Object.entries(counts)
            .map(([k, n]) => `${n} ${label(k)}`)
            .join(', ')}
          {last?.results.some((r) => r.outcome !== 'done') && (
            <> — {last.results.filter((r) => r.outcome !== 'done').slice(0, 3).map((r) => `${shortId(r.job_id)}: ${r.detail ?? label(r.outcome)}`).join('; ')}</>
          )}
        </span>
      )}
      {error && <MutationError error={error} />}
      <Confirm
        open={confirm !== null}
        title={confirm === 'cancel' ? `Cancel ${num(ids.length)} jobs?` : `Retry the failed items of ${num(ids.length)} jobs?`}
        confirmLabel={confirm === 'cancel' ? 'Cancel jobs' : 'Retry'}
        danger={confirm === 'cancel'}
        busy={busy}
        onCancel={() => setConfirm(null)}
        onConfirm={run}
      >
        <p>{confirm === 'cancel' ? 'Finished jobs are left as they are.' : 'Jobs without failed items are left as they are.'}</p>
      </Confirm>
    </div>
  );
}
