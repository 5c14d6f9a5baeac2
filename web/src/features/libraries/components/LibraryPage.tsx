import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useLibrary, useLibraryImages } from '../hooks/queries';
import { useRenameLibrary } from '../hooks/useRenameLibrary';
import { useDeleteLibrary } from '../hooks/useDeleteLibrary';
import { useRegisterImageUrl } from '../hooks/useRegisterImageUrl';
import { ErrorState, Empty, Loading, MutationError } from '../../../components/States';
import { Field } from '../../../components/Field';
import { Confirm } from '../../../components/Confirm';
import { Drawer } from '../../../components/Drawer';
import { VirtualGrid } from '../../../components/VirtualGrid';
import { UploadPanel } from './UploadPanel';
import { ApiError, fieldErrorMap } from '../../../api/errors';
import { imageContentUrl } from '../../../api/urls';
import { Thumb } from '../../../components/Thumb';
import { useUrlState } from '../../../lib/urlState';
import { bytes, dateTime, num } from '../../../lib/format';
import type { Image } from '../../../api/types';

const DEFAULTS = { image: '' };

export function LibraryPage() {
  const { libraryId = '' } = useParams();
  const q = useLibrary(libraryId);
  if (q.isPending) return <Loading what="Loading library" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const lib = q.data;
  return (
    <>
      <p>
        <Link to="/libraries">← Libraries</Link>
      </p>
      <div className="page-head">
        <h1>{lib.name}</h1>
        <div className="row">
          <Link className="button primary" to={`/submit?library=${lib.id}`}>
            Run a pipeline on it
          </Link>
          <DeleteLibrary id={lib.id} name={lib.name} />
        </div>
      </div>
      {lib.description && <p className="muted">{lib.description}</p>}
      <div className="grid-2">
        <RenameLibrary id={lib.id} name={lib.name} description={lib.description ?? ''} />
        <RegisterUrl libraryId={lib.id} />
      </div>
      <h2>Upload images</h2>
      <UploadPanel libraryId={lib.id} />
      <h2>
        Images <span className="muted">({num(lib.image_count)})</span>
      </h2>
      <LibraryImages libraryId={lib.id} count={lib.image_count} />
    </>
  );
}

function LibraryImages({ libraryId, count }: { libraryId: string; count: number }) {
  const q = useLibraryImages(libraryId);
  const [{ image }, setUrl] = useUrlState(DEFAULTS);
  if (q.isPending) return <Loading what="Loading images" />;
  if (q.isError) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const items = q.data.pages.flatMap((p) => p.items);
  const total = q.data.pages[0]?.total ?? count;
  if (total === 0) return <Empty>No images yet: drop files above or register an image URL.</Empty>;
  const open = items.find((i) => i.id === image);
  return (
    <>
      <VirtualGrid
        count={total}
        items={items}
        label="Library images"
        onNeedMore={() => {
          if (q.hasNextPage && !q.isFetchingNextPage) void q.fetchNextPage();
        }}
        render={(img) => (
          <button type="button" className="thumb-inner" onClick={() => setUrl({ image: img.id })} aria-label={`Open ${img.filename}`}>
            <Thumb libraryId={libraryId} imageId={img.id} />
            <span className="cap">{img.filename}</span>
          </button>
        )}
      />
      {image && (
        <Drawer title={open?.filename ?? 'Image'} onClose={() => setUrl({ image: '' })}>
          {open ? <ImageDetails img={open} /> : <Loading what="Loading image" />}
        </Drawer>
      )}
    </>
  );
}

function ImageDetails({ img }: { img: Image }) {
  return (
    <>
      <img src={imageContentUrl(img.library_id, img.id)} alt={img.filename} />
      <dl className="kv">
        <dt>Name</dt>
        <dd>{img.filename}</dd>
        <dt>Source</dt>
        <dd>{img.source === 'url' ? img.url : 'uploaded'}</dd>
        <dt>Type</dt>
        <dd>{img.media_type ?? '—'}</dd>
        <dt>Size</dt>
        <dd>{bytes(img.size_bytes)}</dd>
        <dt>Added</dt>
        <dd>{dateTime(img.created_at)}</dd>
        <dt>Id</dt>
        <dd className="mono">{img.id}</dd>
      </dl>
    </>
  );
}

function RenameLibrary({ id, name, description }: { id: string; name: string; description: string }) {
  const [n, setN] = useState(name);
  const [d, setD] = useState(description);
  const rename = useRenameLibrary();
  const errors = rename.error instanceof ApiError ? fieldErrorMap(rename.error.fieldErrors) : {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    rename.mutate({ id, name: n.trim(), description: d.trim() });
  };
  return (
    <form className="card stack" onSubmit={submit} aria-label="Rename library">
      <Field label="Name" error={errors.name}>
        <input value={n} onChange={(e) => setN(e.target.value)} required maxLength={200} />
      </Field>
      <Field label="Description" error={errors.description}>
        <input value={d} onChange={(e) => setD(e.target.value)} maxLength={2000} />
      </Field>
      {rename.error && !errors.name && !errors.description && <MutationError error={rename.error} />}
      {rename.isSuccess && <div className="alert ok" role="status">Saved.</div>}
      <div>
        <button type="submit" disabled={rename.isPending || n.trim() === '' || (n === name && d === description)}>
          {rename.isPending ? 'Saving…' : 'Save name and description'}
        </button>
      </div>
    </form>
  );
}

function RegisterUrl({ libraryId }: { libraryId: string }) {
  const [url, setUrl] = useState('');
  const [filename, setFilename] = useState('');
  const reg = useRegisterImageUrl(libraryId);
  const errors = reg.error instanceof ApiError ? fieldErrorMap(reg.error.fieldErrors) : {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    reg.mutate({ url: url.trim(), filename: filename.trim() || null }, { onSuccess: () => { setUrl(''); setFilename(''); } });
  };
  return (
    <form className="card stack" onSubmit={submit} aria-label="Register an image URL">
      <Field label="Image URL" error={errors.url} hint="An https address the workers fetch the image from.">
        <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} required placeholder="https://example.org/cat.jpg" />
      </Field>
      <Field label="File name (optional)" error={errors.filename}>
        <input value={filename} onChange={(e) => setFilename(e.target.value)} maxLength={255} />
      </Field>
      {reg.error && !errors.url && !errors.filename && <MutationError error={reg.error} />}
      {reg.isSuccess && <div className="alert ok" role="status">Registered {reg.data.filename}.</div>}
      <div>
        <button type="submit" disabled={reg.isPending || url.trim() === ''}>
          {reg.isPending ? 'Registering…' : 'Register URL'}
        </button>
      </div>
    </form>
  );
}

function DeleteLibrary({ id, name }: { id: string; name: string }) {
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const del = useDeleteLibrary(() => navigate('/libraries'));
  return (
    <>
      <button type="button" className="danger" onClick={() => setOpen(true)}>
        Delete library
      </button>
      <Confirm open={open} title={`Delete “${name}”?`} confirmLabel="Delete" danger busy={del.isPending} onCancel={() => setOpen(false)} onConfirm={() => del.mutate(id)}>
        <p>The library and all its images are deleted. This cannot be undone.</p>
        <MutationError error={del.error} />
      </Confirm>
    </>
  );
}
