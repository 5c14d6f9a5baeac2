import { Drawer } from '../../../components/Drawer';
import { ErrorState, Empty, Loading } from '../../../components/States';
import { useJobResults } from '../hooks/queries';
import { usePipeline } from '../../pipelines/hooks/queries';
import { useImage } from '../../libraries/hooks/queries';
import { imageContentUrl } from '../../../api/urls';
import type { Job, JobResult } from '../../../api/types';
import { label, num } from '../../../lib/format';

/** One image of a job: every stage's prompt, answer, verdict, attempts, latency and tokens. */
export function ImageDrawer({ job, imageId, onClose }: { job: Job; imageId: string; onClose: () => void }) {
  const q = useJobResults(job.id, { image_id: imageId });
  const pipeline = usePipeline(job.pipeline_id);
  // Prompts come from the pipeline when it is still at the version this job ran.
  const prompts = pipeline.data?.version === job.pipeline_version ? pipeline.data.stages : undefined;
  const image = useImage(job.library_id, imageId);
  const results = q.data?.pages.flatMap((p) => p.items) ?? [];
  const name = image.data?.filename ?? `Image ${imageId.slice(0, 8)}`;
  return (
    <Drawer title={name} onClose={onClose}>
      <img src={imageContentUrl(job.library_id, imageId)} alt={name} />
      {q.isPending ? (
        <Loading what="Loading results" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : results.length === 0 ? (
        <Empty>No stage has answered for this image yet.</Empty>
      ) : (
        [...results]
          .sort((a, b) => a.stage_index - b.stage_index)
          .map((r) => <StageResult key={`${r.item_id}:${r.stage_index}`} r={r} prompt={prompts?.[r.stage_index]?.prompt} />)
      )}
    </Drawer>
  );
}

function StageResult({ r, prompt }: { r: JobResult; prompt: string | undefined }) {
  const answer = r.output_json ? JSON.stringify(r.output_json, null, 2) : r.output_text;
  return (
    <section style={{ marginBottom: '1.25rem' }}>
      <h3>
        {r.stage_index + 1}. {r.stage_name} <span className={`verdict ${r.verdict}`}>{label(r.verdict)}</span>
      </h3>
      <dl className="kv">
        <dt>Prompt</dt>
        <dd>{prompt ?? <span className="muted">from an earlier pipeline version</span>}</dd>
        {r.filter_reason && (
          <>
            <dt>Filter</dt>
            <dd>{r.filter_reason}</dd>
          </>
        )}
        <dt>Model</dt>
        <dd className="mono">{r.model}</dd>
        <dt>Latency</dt>
        <dd>{num(r.latency_ms)} ms</dd>
        <dt>Tokens</dt>
        <dd>
          {num(r.usage.input_tokens)} in / {num(r.usage.output_tokens)} out
        </dd>
        {r.finish_reason && (
          <>
            <dt>Finish</dt>
            <dd>{r.finish_reason}</dd>
          </>
        )}
      </dl>
      <div className="field-label">Answer</div>
      <pre>{answer}</pre>
    </section>
  );
}
