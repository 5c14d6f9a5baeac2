import { Drawer } from '../../../components/Drawer';
import { ErrorState, Loading } from '../../../components/States';
import { useJobItem } from '../hooks/queries';
import { imageContentUrl } from '../../../api/urls';
import type { ItemStage, Job } from '../../../api/types';
import { label, num, shortId } from '../../../lib/format';

/** One image of a job: every stage's prompt, answer, verdict and reason, attempts, latency, tokens. */
export function ItemDrawer({ job, itemId, onClose }: { job: Job; itemId: string; onClose: () => void }) {
  const q = useJobItem(job.id, itemId);
  const item = q.data?.item;
  const name = item?.image_name ?? (item ? `Image ${shortId(item.image_id)}` : 'Image');
  return (
    <Drawer title={name} onClose={onClose}>
      {q.isPending ? (
        <Loading what="Loading the image's results" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : (
        <>
          <img src={imageContentUrl(job.library_id, q.data.item.image_id)} alt={name} />
          <dl className="kv">
            <dt>State</dt>
            <dd>
              <span className={`verdict ${q.data.item.status}`}>{label(q.data.item.status)}</span> at stage {q.data.item.stage_index + 1}
            </dd>
            {q.data.item.error && (
              <>
                <dt>Error</dt>
                <dd>
                  {q.data.item.error_class ? `${label(q.data.item.error_class)}: ` : ''}
                  {q.data.item.error}
                </dd>
              </>
            )}
          </dl>
          {q.data.stages.map((s) => (
            <StageView key={s.index} s={s} />
          ))}
        </>
      )}
    </Drawer>
  );
}

function StageView({ s }: { s: ItemStage }) {
  const a = s.answer;
  const answer = a ? (a.output_json ? JSON.stringify(a.output_json, null, 2) : a.output_text) : null;
  return (
    <section style={{ marginBottom: '1.25rem' }}>
      <h3>
        {s.index + 1}. {s.name} <span className={`verdict ${s.state}`}>{label(s.state)}</span>
      </h3>
      <dl className="kv">
        <dt>Prompt</dt>
        <dd>{s.prompt}</dd>
        {s.system_prompt && (
          <>
            <dt>System</dt>
            <dd>{s.system_prompt}</dd>
          </>
        )}
        <dt>Model</dt>
        <dd className="mono">{a?.model ?? s.model}</dd>
        {s.attempts != null && (
          <>
            <dt>Attempts</dt>
            <dd>{s.attempts}</dd>
          </>
        )}
        {a && (
          <>
            <dt>Verdict</dt>
            <dd>
              {label(a.verdict)}
              {a.filter_reason ? ` — ${a.filter_reason}` : ''}
            </dd>
            <dt>Latency</dt>
            <dd>{num(a.latency_ms)} ms</dd>
            <dt>Tokens</dt>
            <dd>
              {num(a.usage.input_tokens)} in / {num(a.usage.output_tokens)} out
            </dd>
          </>
        )}
        {s.error && (
          <>
            <dt>Error</dt>
            <dd>
              {s.error_class ? `${label(s.error_class)}: ` : ''}
              {s.error}
            </dd>
          </>
        )}
      </dl>
      {answer !== null && (
        <>
          <div className="field-label">Answer</div>
          <pre>{answer}</pre>
        </>
      )}
    </section>
  );
}
