import { Link } from 'react-router';
import { computeFunnel, share, type FunnelStage } from '../../../lib/funnel';
import type { Job } from '../../../api/types';
import { num } from '../../../lib/format';

const SEGMENTS: { key: 'passed' | 'filteredOut' | 'failed'; outcome: string; label: string; cls: string }[] = [
  { key: 'passed', outcome: 'passed', label: 'passed', cls: 'seg-passed' },
  { key: 'filteredOut', outcome: 'filtered_out', label: 'filtered out', cls: 'seg-filtered' },
  { key: 'failed', outcome: 'failed', label: 'failed', cls: 'seg-failed' },
];

/** Per stage: images in → passed / filtered out / failed; each segment links to those images. */
export function Funnel({ job, linkFor }: { job: Job; linkFor: (stage: number, outcome: string) => string }) {
  const stages = computeFunnel(job);
  return (
    <div className="stack" aria-label="Per-stage funnel">
      {stages.map((s) => (
        <FunnelRow key={s.index} s={s} linkFor={linkFor} />
      ))}
    </div>
  );
}

function FunnelRow({ s, linkFor }: { s: FunnelStage; linkFor: (stage: number, outcome: string) => string }) {
  return (
    <div>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <strong>
          {s.index + 1}. {s.name}
        </strong>
        <span className="muted">
          {num(s.input)} in{s.remaining > 0 ? `, ${num(s.remaining)} to go` : ''} · {num(s.tokens)} tokens
        </span>
      </div>
      <div className="bar">
        {SEGMENTS.map((seg) =>
          s[seg.key] > 0 ? (
            <Link
              key={seg.key}
              to={linkFor(s.index, seg.outcome)}
              className={seg.cls}
              style={{ width: `${share(s[seg.key], s.input)}%` }}
              aria-label={`Stage ${s.name}: ${num(s[seg.key])} ${seg.label}; show these images`}
              title={`${num(s[seg.key])} ${seg.label}`}
            />
          ) : null,
        )}
      </div>
      <div className="legend">
        {SEGMENTS.map((seg) => (
          <Link key={seg.key} to={linkFor(s.index, seg.outcome)}>
            <span className={`swatch ${seg.cls}`} aria-hidden="true" />
            {num(s[seg.key])} {seg.label}
          </Link>
        ))}
      </div>
    </div>
  );
}
