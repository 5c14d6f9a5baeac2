import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router';
import { useJob, useJobErrors, useJobEta, useJobItems } from '../hooks/queries';
import { useJobEvents, type StreamState } from '../hooks/useJobEvents';
import { useCancelJob } from '../hooks/useCancelJob';
import { useRetryJob } from '../hooks/useRetryJob';
import { useLibrary } from '../../libraries/hooks/queries';
import { Funnel } from './Funnel';
import { ItemDrawer } from './ItemDrawer';
import { ErrorState, Empty, Loading, MutationError } from '../../../components/States';
import { ProgressBar, StatusBadge } from '../../../components/Job';
import { VirtualGrid } from '../../../components/VirtualGrid';
import { Confirm } from '../../../components/Confirm';
import { Field } from '../../../components/Field';
import { exportUrl } from '../../../api/urls';
import { Thumb } from '../../../components/Thumb';
import { isTerminal, type ItemStatus, type Job } from '../../../api/types';
import { useUrlState } from '../../../lib/urlState';
import { dateTime, label, num, shortId } from '../../../lib/format';
import { duration, etaLeft, usd } from '../../../lib/estimate';

// `stage` is -1 for every stage; `outcome` empty for every state; `item` is the open drawer.
const DEFAULTS = { stage: -1, outcome: '', item: '' };

export function JobPage() {
  const { jobId = '' } = useParams();
  const q = useJob(jobId);
  const live = q.data ? !isTerminal(q.data.status) : false;
  const stream = useJobEvents(jobId, live);
  if (q.isPending) return <Loading what="Loading job" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  return <JobView job={q.data} stream={stream} />;
}

function throughput(job: Job): string {
  if (!job.started_at) return '—';
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const secs = Math.max(1, (end - Date.parse(job.started_at)) / 1000);
  const done = job.counts.passed + job.counts.filtered_out + job.counts.failed + job.counts.cancelled + job.counts.skipped;
  const perMin = (done / secs) * 60;
  return `${perMin >= 10 ? Math.round(perMin) : perMin.toFixed(1)} images/min`;
}

function JobView({ job, stream }: { job: Job; stream: StreamState }) {
  const [url, setUrl] = useUrlState(DEFAULTS);
  const library = useLibrary(job.library_id);
  const linkFor = (stage: number, outcome: string) => `?stage=${stage}&outcome=${outcome}#images`;
  const done = isTerminal(job.status);
  return (
    <>
      <p>
        <Link to="/jobs">← Jobs</Link>
      </p>
      <div className="page-head">
        <h1>
          Job <span className="mono">{shortId(job.id)}</span> <StatusBadge status={job.status} />{' '}
          {job.preview && <span className="status queued">stage preview</span>}
        </h1>
        <JobActions job={job} />
      </div>
      <p className="muted">
        {job.pipeline_name} (version {job.pipeline_version}) on <Link to={`/libraries/${job.library_id}`}>{library.data?.name ?? 'its library'}</Link> · priority {job.priority} · created{' '}
        {dateTime(job.created_at)} ·{' '}
        <span role="status">
          {done ? 'finished' : stream === 'live' ? 'live' : stream === 'reconnecting' ? 'reconnecting…' : 'connecting…'}
        </span>
      </p>
      <ProgressBar percent={job.percent_complete} label="Job progress" />
      <div className="stats" style={{ marginTop: '0.75rem' }}>
        <Stat k="Complete" v={`${Math.floor(job.percent_complete)}%`} />
        <Stat k="Images" v={num(job.counts.total)} />
        <Stat k="Pending / running" v={`${num(job.counts.pending)} / ${num(job.counts.running)}`} />
        <Stat k="Failed" v={num(job.counts.failed)} />
        <Stat k="Throughput" v={throughput(job)} />
        <Stat k="Tokens in / out" v={`${num(job.usage.input_tokens)} / ${num(job.usage.output_tokens)}`} />
        <Stat
          k={`${done ? 'Cost' : 'Cost so far'}${job.max_cost_usd != null ? ' / cap' : ''}`}
          v={job.max_cost_usd != null ? `${usd(job.usage.cost_usd)} / ${usd(job.max_cost_usd)}` : usd(job.usage.cost_usd)}
        />
        <EtaStat job={job} />
      </div>
      {job.stop_reason === 'budget_exhausted' && (
        <div className="alert warn" role="status">
          <strong>Stopped:</strong> the job&apos;s spend reached its cap; {num(job.counts.skipped)} images were skipped. Retry with a higher cap to
          run them.
        </div>
      )}
      {job.error_summary && (
        <div className="alert error" role="alert">
          <strong>Errors:</strong> {job.error_summary}
        </div>
      )}
      <ErrorGroups job={job} />
      <h2>Funnel</h2>
      <div className="card">
        <Funnel job={job} linkFor={linkFor} />
      </div>
      <div className="row" style={{ marginTop: '0.75rem' }}>
        <span>Export results:</span>
        <a className="button" href={exportUrl(job.id, 'csv')} download>
          CSV
        </a>
        <a className="button" href={exportUrl(job.id, 'jsonl')} download>
          JSON Lines
        </a>
      </div>
      <h2 id="images">Images</h2>
      <div className="filters">
        <Field label="Stage">
          <select value={url.stage} onChange={(e) => setUrl({ stage: Number(e.target.value) })}>
            <option value={-1}>all stages</option>
            {job.stages.map((s) => (
              <option key={s.index} value={s.index}>
                {s.index + 1}. {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Outcome">
          <select value={url.outcome} onChange={(e) => setUrl({ outcome: e.target.value })}>
            <option value="">any</option>
            {OUTCOMES.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ItemGrid
        job={job}
        stage={url.stage >= 0 ? url.stage : undefined}
        outcome={OUTCOMES.find((o) => o.value === url.outcome)?.value}
        onOpen={(item) => setUrl({ item })}
      />
      {url.item && <ItemDrawer job={job} itemId={url.item} onClose={() => setUrl({ item: '' })} />}
    </>
  );
}

/** Time left while the job runs: the api's ETA, re-read as the job moves, counted down in between. */
function EtaStat({ job }: { job: Job }) {
  const live = !isTerminal(job.status);
  const eta = useJobEta(job.id, live);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [live]);
  if (!live) return <Stat k="Time left" v="done" />;
  const left = eta.data ? etaLeft(eta.data.eta_seconds, eta.data.read_at, now) : null;
  return <Stat k="Time left" v={left === null ? '…' : left === 0 ? 'finishing' : `≈ ${duration(left)}`} />;
}

function Stat({ k, v }: { k: string; v: string }) {
  return (
    <div className="stat">
      <div className="v">{v}</div>
      <div className="k">{k}</div>
    </div>
  );
}

const OUTCOMES: { value: ItemStatus; label: string }[] = [
  { value: 'passed', label: 'passed' },
  { value: 'filtered_out', label: 'filtered out' },
  { value: 'failed', label: 'failed' },
  { value: 'pending', label: 'pending' },
  { value: 'running', label: 'running' },
  { value: 'cancelled', label: 'cancelled' },
  { value: 'skipped', label: 'skipped' },
];

const STATUS_MARK: Record<ItemStatus, string> = {
  passed: '✓ passed',
  filtered_out: '✕ filtered out',
  failed: '! failed',
  pending: '… pending',
  running: '↻ running',
  cancelled: '– cancelled',
  skipped: '⊘ skipped',
};

/** The job's images (or one funnel segment of them) with their state; one request per 200. */
function ItemGrid({ job, stage, outcome, onOpen }: { job: Job; stage: number | undefined; outcome: ItemStatus | undefined; onOpen: (itemId: string) => void }) {
  const q = useJobItems(job.id, { ...(stage !== undefined ? { stage } : {}), ...(outcome ? { outcome } : {}) });
  if (q.isPending) return <Loading what="Loading images" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const items = q.data.pages.flatMap((p) => p.items);
  const total = q.data.pages[0]?.total ?? 0;
  // The scheduler writes a job's items in chunks as their turn comes: until then the job
  // counts them but the list does not hold them yet.
  const unfiltered = stage === undefined && !outcome;
  const notListedYet = unfiltered ? job.counts.total - total : 0;
  if (total === 0) {
    return notListedYet > 0 ? (
      <Empty>The job's {num(notListedYet)} images appear here as the scheduler takes them up.</Empty>
    ) : (
      <Empty>No images here{outcome ? ` (${label(outcome)})` : ''} yet.</Empty>
    );
  }
  return (
    <>
      <p className="muted" role="status">
        {notListedYet > 0 ? `${num(total)} of ${num(job.counts.total)} images listed so far` : `${num(total)} images`}
      </p>
      <VirtualGrid
        count={total}
        items={items}
        label="Job images"
        onNeedMore={() => {
          if (q.hasNextPage && !q.isFetchingNextPage) void q.fetchNextPage();
        }}
        render={(it) => (
          <button type="button" className="thumb-inner" onClick={() => onOpen(it.item_id)} aria-label={`Open ${it.image_name ?? shortId(it.image_id)}: ${label(it.status)}`}>
            <Thumb libraryId={job.library_id} imageId={it.image_id} />
            <span className="cap">
              <span className={`verdict ${it.status}`}>{STATUS_MARK[it.status]}</span>
              <span className="muted" style={{ overflow: 'hidden', textOverflow: 'ellipsis' }}>{it.image_name}</span>
            </span>
          </button>
        )}
      />
    </>
  );
}

function ErrorGroups({ job }: { job: Job }) {
  const q = useJobErrors(job.id, job.counts.failed);
  if (job.counts.failed === 0) return null;
  return (
    <>
      <h2>Errors</h2>
      {q.isPending ? (
        <Loading what="Loading errors" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Class</th>
                <th className="num">Images</th>
                <th>Example</th>
              </tr>
            </thead>
            <tbody>
              {q.data.map((g) => (
                <tr key={g.class ?? 'unclassified'}>
                  <td>{g.class ? label(g.class) : 'unclassified'}</td>
                  <td className="num">
                    <Link to={`?outcome=failed#images`}>{num(g.count)}</Link>
                  </td>
                  <td className="wrap">
                    <Link to={`?outcome=failed&item=${g.sample_item_id}#images`}>{g.sample_message ?? 'no message'}</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function JobActions({ job }: { job: Job }) {
  const cancel = useCancelJob();
  const retry = useRetryJob();
  const [confirming, setConfirming] = useState(false);
  const active = !isTerminal(job.status);
  return (
    <div className="row">
      {active && (
        <button type="button" className="danger" onClick={() => { cancel.reset(); setConfirming(true); }}>
          Cancel job
        </button>
      )}
      {job.counts.failed > 0 && (
        <button type="button" onClick={() => retry.mutate(job.id)} disabled={retry.isPending}>
          {retry.isPending ? 'Retrying…' : `Retry ${num(job.counts.failed)} failed`}
        </button>
      )}
      <MutationError error={retry.error} />
      <Confirm
        open={confirming}
        title="Cancel this job?"
        confirmLabel="Cancel job"
        danger
        busy={cancel.isPending}
        onCancel={() => setConfirming(false)}
        onConfirm={() => cancel.mutate(job.id, { onSuccess: () => setConfirming(false) })}
      >
        <p>Images not analysed yet are skipped; results so far are kept.</p>
        <MutationError error={cancel.error} />
      </Confirm>
    </div>
  );
}

