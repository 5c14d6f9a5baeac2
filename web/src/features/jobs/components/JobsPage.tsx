import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useJobHistory } from '../hooks/queries';
import { useTenantStream } from '../hooks/TenantEvents';
import { useLibraries } from '../../libraries/hooks/queries';
import { usePipelines } from '../../pipelines/hooks/queries';
import { useUrlState } from '../../../lib/urlState';
import { Empty, ErrorState, Loading } from '../../../components/States';
import { Pager } from '../../../components/Pager';
import { Field } from '../../../components/Field';
import { ProgressBar, StatusBadge } from '../../../components/Job';
import { JOB_STATUSES } from '../../../api/types';
import { age, label, num, shortId } from '../../../lib/format';

const PAGE = 50;
const DEFAULTS = { status: '', pipeline: '', library: '', from: '', to: '', page: 1 };
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
  const params = {
    limit: PAGE,
    offset: (url.page - 1) * PAGE,
    ...(url.status ? { status: url.status } : {}),
    ...(url.pipeline ? { pipeline_id: url.pipeline } : {}),
    ...(url.library ? { library_id: url.library } : {}),
    ...(url.from ? { created_from: dayStart(url.from) } : {}),
    ...(url.to ? { created_to: dayStart(url.to, 1) } : {}),
  };
  const stream = useTenantStream();
  const q = useJobHistory(params, stream !== 'live');
  const libs = useLibraries({ limit: 200, offset: 0 });
  const pipes = usePipelines({ limit: 200, offset: 0 });
  const libName = new Map(libs.data?.items.map((l) => [l.id, l.name]));
  const filtered = url.status || url.pipeline || url.library || url.from || url.to;

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
        {filtered && (
          <button type="button" onClick={() => setUrl({ status: '', pipeline: '', library: '', from: '', to: '' })}>
            Clear filters
          </button>
        )}
      </form>
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
                  <th>Job</th>
                  <th>Status</th>
                  <th>Progress</th>
                  <th className="num">Passed</th>
                  <th className="num hide-narrow">Filtered out</th>
                  <th className="num hide-narrow">Failed</th>
                  <th className="hide-narrow">Pipeline</th>
                  <th className="hide-narrow">Library</th>
                  <th className="num">Age</th>
                </tr>
              </thead>
              <tbody>
                {q.data.items.map((j) => (
                  <tr key={j.id}>
                    <td>
                      <Link to={`/jobs/${j.id}`} className="mono" aria-label={`Job ${j.id}`}>
                        {shortId(j.id)}
                      </Link>
                    </td>
                    <td>
                      <StatusBadge status={j.status} />
                    </td>
                    <td style={{ minWidth: '7rem' }}>
                      <ProgressBar percent={j.percent_complete} label={`Job ${shortId(j.id)} progress`} />
                      <span className="muted" style={{ fontSize: '0.8rem' }}>
                        {Math.floor(j.percent_complete)}% of {num(j.counts.total)}
                      </span>
                    </td>
                    <td className="num">{num(j.counts.passed)}</td>
                    <td className="num hide-narrow">{num(j.counts.filtered_out)}</td>
                    <td className="num hide-narrow">{num(j.counts.failed)}</td>
                    <td className="hide-narrow">{j.pipeline_name}</td>
                    <td className="hide-narrow">{libName.get(j.library_id) ?? shortId(j.library_id)}</td>
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
