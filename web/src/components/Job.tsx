import type { JobStatus } from '../api/types';
import { label } from '../lib/format';

export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`status ${status}`}>{label(status)}</span>;
}

export function ProgressBar({ percent, label: text }: { percent: number; label: string }) {
  const p = Math.max(0, Math.min(100, percent));
  return (
    <div className="progress" role="progressbar" aria-label={text} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(p)}>
      <div style={{ width: `${p}%` }} />
    </div>
  );
}
