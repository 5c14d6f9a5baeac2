import type { paths } from './schema';
import { ApiError, networkError } from './errors';

type Uploaded = paths['/api/libraries/{library_id}/images']['post']['responses']['201']['content']['application/json'];

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];
export const ACCEPT_ATTR = ACCEPTED.join(',');

/** What the api would refuse about a file, checked before sending it (the api checks again). */
export function precheck(file: File): string | null {
  const byName = /\.(png|jpe?g|webp|gif)$/i.test(file.name);
  if (!ACCEPTED.includes(file.type) && !byName) return 'not a PNG, JPEG, WEBP or GIF image';
  if (file.size > MAX_UPLOAD_BYTES) return `larger than ${MAX_UPLOAD_BYTES / 1024 / 1024} MB`;
  if (file.size === 0) return 'the file is empty';
  return null;
}

/**
 * Uploads one file with XMLHttpRequest, the browser API that reports upload progress
 * (fetch does not). Same origin, so the session cookie goes along.
 */
export function uploadImage(libraryId: string, file: File, onProgress: (fraction: number) => void, signal?: AbortSignal): Promise<Uploaded> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/libraries/${encodeURIComponent(libraryId)}/images`);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      const body = safeJson(xhr.responseText);
      if (xhr.status === 201) {
        onProgress(1);
        resolve(body as Uploaded);
      } else if (body && typeof body === 'object' && 'code' in body) {
        reject(new ApiError(body as ConstructorParameters<typeof ApiError>[0]));
      } else {
        reject(new ApiError({ type: 'about:blank', title: 'Upload failed', status: xhr.status, code: 'http_error', detail: `The server answered ${xhr.status}` }));
      }
    };
    xhr.onerror = () => reject(networkError(new Error('upload interrupted')));
    xhr.onabort = () => reject(networkError(new Error('upload cancelled')));
    signal?.addEventListener('abort', () => xhr.abort());
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
