import { useRef, useState, type DragEvent } from 'react';
import { useUploadImages } from '../hooks/useUploadImages';
import { ACCEPT_ATTR } from '../../../api/upload';
import { bytes } from '../../../lib/format';

export function UploadPanel({ libraryId }: { libraryId: string }) {
  const { entries, upload, clearFinished } = useUploadImages(libraryId);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const files = [...e.dataTransfer.files];
    if (files.length) void upload(files);
  };
  const done = entries.filter((e) => e.state === 'done').length;
  const failed = entries.filter((e) => e.state === 'error').length;
  const active = entries.length - done - failed;
  return (
    <div>
      <div
        className={over ? 'dropzone over' : 'dropzone'}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p style={{ margin: '0 0 0.5rem' }}>Drop PNG, JPEG, WEBP or GIF files here (20 MB each at most), or</p>
        <button type="button" className="primary" onClick={() => input.current?.click()}>
          Choose files…
        </button>
        <input
          ref={input}
          type="file"
          multiple
          accept={ACCEPT_ATTR}
          className="sr-only"
          aria-label="Choose image files to upload"
          tabIndex={-1}
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            e.target.value = '';
            if (files.length) void upload(files);
          }}
        />
      </div>
      {entries.length > 0 && (
        <>
          <div className="row" style={{ marginTop: '0.5rem' }} aria-live="polite">
            <span>
              {done} uploaded, {failed} failed{active > 0 ? `, ${active} in progress` : ''}
            </span>
            <button type="button" className="link" onClick={clearFinished} disabled={active > 0 && done + failed === 0}>
              Clear finished
            </button>
          </div>
          <ul className="uploads" aria-label="Uploads">
            {entries.map((e) => (
              <li key={e.key}>
                <span style={{ overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }} title={e.name}>
                  {e.name} <span className="muted">({bytes(e.size)})</span>
                </span>
                <progress max={1} value={e.progress} aria-label={`Upload of ${e.name}`} />
                <span className={e.state === 'error' ? 'field-error' : e.state === 'done' ? 'verdict passed' : 'muted'}>
                  {e.state === 'error' ? e.error : e.state === 'done' ? 'uploaded' : e.state === 'uploading' ? `${Math.round(e.progress * 100)}%` : 'waiting'}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
