import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { useJob, useJobResults } from '../hooks/queries';
import { useJobEvents, type StreamState } from '../hooks/useJobEvents';
import { useCancelJob } from '../hooks/useCancelJob';
import { useRetryJob } from '../hooks/useRetryJob';
import { useLibrary } from '../../libraries/hooks/queries';
import { Funnel } from './Funnel';
import { ImageDrawer } from './ImageDrawer';
import { ErrorState, Empty, Loading, MutationError } from '../../../components/States';
import { ProgressBar, StatusBadge } from '../../../components/Job';
import { VirtualGrid } from '../../../components/VirtualGrid';
import { Confirm } from '../../../components/Confirm';
import { Field } from '../../../components/Field';
import { exportUrl, thumbnailUrl } from '../../../api/urls';
import { isTerminal, type Job, type Verdict } from '../../../api/types';
import { useUrlState } from '../../../lib/urlState';
import { dateTime, label, num } from '../../../lib/format';

const DEFAULTS = { stage: 0, outcome: '', image: '' };

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
  const done = job.counts.passed + job.counts.filtered_out + job.counts.failed + job.counts.cancelled;
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
          Job <span className="mono">{job.id.slice(0, 8)}</span> <StatusBadge status={job.status} />
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
        <Stat k="Estimated cost" v={`$${job.usage.cost_usd.toFixed(4)}`} />
      </div>
      {job.error_summary && (
        <div className="alert error" role="alert">
          <strong>Errors:</strong> {job.error_summary}
        </div>
      )}
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
            {job.stages.map((s) => (
              <option key={s.index} value={s.index}>
                {s.index + 1}. {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Outcome">
          <select value={url.outcome} onChange={(e) => setUrl({ outcome: e.target.value })}>
            <option value="">all results</option>
            <option value="passed">passed</option>
            <option value="filtered_out">filtered out</option>
            <option value="failed">failed</option>
          </select>
        </Field>
      </div>
      <ResultGrid job={job} stage={url.stage} outcome={url.outcome} onOpen={(image) => setUrl({ image })} />
      {url.image && <ImageDrawer job={job} imageId={url.image} onClose={() => setUrl({ image: '' })} />}
    </>
  );
}

function Stat({ k, v }: { k: string; v: string }) {
  return (
    <div className="stat">
      <div className="v">{v}</div>
      <div className="k">{k}</div>
    </div>
  );
}

function ResultGrid({ job, stage, outcome, onOpen }: { job: Job; stage: number; outcome: string; onOpen: (imageId: string) => void }) {
  const verdict = outcome === 'passed' || outcome === 'filtered_out' ? (outcome as Verdict) : undefined;
  const q = useJobResults(job.id, { stage, ...(verdict ? { verdict } : {}) }, outcome !== 'failed');
  if (outcome === 'failed') {
    return <Empty>{num(job.stages.find((s) => s.index === stage)?.failed ?? 0)} images failed at this stage; they have no answer to show. The job's errors are summarised above.</Empty>;
  }
  if (q.isPending) return <Loading what="Loading results" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const items = q.data.pages.flatMap((p) => p.items);
  const total = q.data.pages[0]?.total ?? 0;
  if (total === 0) return <Empty>No results{outcome ? ` ${label(outcome)}` : ''} at this stage yet.</Empty>;
  return (
    <>
      <p className="muted">{num(total)} results</p>
      <VirtualGrid
        count={total}
        items={items}
        label="Job images"
        onNeedMore={() => {
          if (q.hasNextPage && !q.isFetchingNextPage) void q.fetchNextPage();
        }}
        render={(r) => (
          <button type="button" className="thumb-inner" onClick={() => onOpen(r.image_id)} aria-label={`Open image ${r.image_id.slice(0, 8)}: ${label(r.verdict)}`}>
            <img src={thumbnailUrl(job.library_id, r.image_id)} alt="" loading="lazy" decoding="async" />
            <span className="cap">
              <span className={`verdict ${r.verdict}`}>{r.verdict === 'passed' ? '✓ passed' : '✕ filtered out'}</span>
            </span>
          </button>
        )}
      />
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

