import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { useLibraries } from '../hooks/queries';
import { useCreateLibrary } from '../hooks/useCreateLibrary';
import { useUrlState } from '../../../lib/urlState';
import { Empty, ErrorState, Loading } from '../../../components/States';
import { Pager } from '../../../components/Pager';
import { Field } from '../../../components/Field';
import { ApiError, fieldErrorMap } from '../../../api/errors';
import { dateTime, num } from '../../../lib/format';

const PAGE = 50;
const DEFAULTS = { page: 1 };

export function LibrariesPage() {
  const [{ page }, setUrl] = useUrlState(DEFAULTS);
  const q = useLibraries({ limit: PAGE, offset: (page - 1) * PAGE });
  return (
    <>
      <div className="page-head">
        <h1>Libraries</h1>
      </div>
      <CreateLibrary />
      <h2>Your libraries</h2>
      {q.isPending ? (
        <Loading what="Loading libraries" />
      ) : q.isError ? (
        <ErrorState error={q.error} retry={() => q.refetch()} />
      ) : q.data.items.length === 0 ? (
        <Empty>No libraries yet. Create one above, then upload images into it.</Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Name</th>
                  <th className="num">Images</th>
                  <th className="hide-narrow">Description</th>
                  <th className="hide-narrow">Updated</th>
                </tr>
              </thead>
              <tbody>
                {q.data.items.map((l) => (
                  <tr key={l.id}>
                    <td>
                      <Link to={`/libraries/${l.id}`}>{l.name}</Link>
                    </td>
                    <td className="num">{num(l.image_count)}</td>
                    <td className="hide-narrow muted">{l.description}</td>
                    <td className="hide-narrow">{dateTime(l.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={page} pageSize={PAGE} total={q.data.total} onPage={(p) => setUrl({ page: p })} />
        </>
      )}
    </>
  );
}

function CreateLibrary() {
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const create = useCreateLibrary((l) => navigate(`/libraries/${l.id}`));
  const errors = create.error instanceof ApiError ? fieldErrorMap(create.error.fieldErrors) : {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ name: name.trim(), description: description.trim() || null });
  };
  return (
    <form className="card" onSubmit={submit} aria-label="New library">
      <h2 style={{ marginTop: 0 }}>New library</h2>
      <div className="fields">
        <Field label="Name" error={errors.name}>
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </Field>
        <Field label="Description (optional)" error={errors.description}>
          <input value={description} onChange={(e) => setDescription(e.target.value)} maxLength={2000} />
        </Field>
      </div>
      {create.error && !(create.error instanceof ApiError && create.error.fieldErrors.length) && (
        <div className="alert error" role="alert">{create.error.message}</div>
      )}
      <div className="row" style={{ marginTop: '0.75rem' }}>
        <button className="primary" type="submit" disabled={create.isPending || name.trim() === ''}>
          {create.isPending ? 'Creating…' : 'Create library'}
        </button>
      </div>
    </form>
  );
}
