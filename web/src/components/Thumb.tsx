import { useState } from 'react';
import { thumbnailUrl } from '../api/urls';

/** A grid thumbnail; images the api cannot render (URL images) show a placeholder instead. */
export function Thumb({ libraryId, imageId }: { libraryId: string; imageId: string }) {
  const [failed, setFailed] = useState(false);
  if (failed) {
    return (
      <span className="thumb-missing" aria-hidden="true">
        no preview
      </span>
    );
  }
  return <img src={thumbnailUrl(libraryId, imageId)} alt="" loading="lazy" decoding="async" onError={() => setFailed(true)} />;
}
