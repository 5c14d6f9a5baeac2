import { useState } from 'react';
import { Link } from 'react-router';
import { usePipelines } from '../hooks/queries';
import { useDeletePipeline } from '../hooks/useDeletePipeline';
import { useUrlState } from '../../../lib/urlState';
import { Empty, ErrorState, Loading, MutationError } from '../../../components/States';
import { Pager } from '../../../components/Pager';
import { Confirm } from '../../../components/Confirm';
import { dateTime } from '../../../lib/format';
import type { Pipeline } from '../../../api/types';

const PAGE = 50;
const DEFAULTS = { page: 1 };

export function PipelinesPage() {
  const [{ page }, setUrl] = useUrlState(DEFAULTS);
  const q = usePipelines({ limit: PAGE, offset: (page - 1) * PAGE });
  const [deleting, setDeleting] = useState<Pipeline | null>(null);
  const del = useDeletePipeline(() => setDeleting(null));
  return (
    <>
      <div className="page-head">
        <h1>Pipelines</h1>
        <Link className="button primary" to="/pipelines/new">
          New pipeline
        </Link>
      </div>
      {q.isPending ? (
        <Loading what="Loading pipelines" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : q.data.items.length === 0 ? (
        <Empty>
          No pipelines yet. <Link to="/pipelines/new">Create the first one</Link>: a few stages, each a prompt with an optional filter.
        </Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Stages</th>
                  <th className="num">Version</th>
                  <th className="hide-narrow">Updated</th>
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {q.data.items.map((p) => (
                  <tr key={p.id}>
                    <td>
                      <Link to={`/pipelines/${p.id}`}>{p.name}</Link>
                      {p.description && <div className="muted hide-narrow">{p.description}</div>}
                    </td>
                    <td>{p.stages.map((s) => s.name).join(' → ')}</td>
                    <td className="num">{p.version}</td>
                    <td className="hide-narrow">{dateTime(p.updated_at)}</td>
                    <td>
                      <div className="row">
                        <Link className="button" to={`/submit?pipeline=${p.id}`}>
                          Run
                        </Link>
                        <button type="button" className="danger" onClick={() => { del.reset(); setDeleting(p); }} aria-label={`Delete ${p.name}`}>
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={page} pageSize={PAGE} total={q.data.total} onPage={(p) => setUrl({ page: p })} />
        </>
      )}
      <Confirm
        open={deleting !== null}
        title={`Delete “${deleting?.name ?? ''}”?`}
        confirmLabel="Delete"
        danger
        busy={del.isPending}
        onCancel={() => setDeleting(null)}
        onConfirm={() => deleting && del.mutate(deleting.id)}
      >
        <p>Jobs already submitted keep running with their copy of the pipeline.</p>
        <MutationError error={del.error} />
      </Confirm>
    </>
  );
}
