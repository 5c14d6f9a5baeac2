// Browser-facing URLs of api resources (images, exports, streams): one place to build them.
const enc = encodeURIComponent;

export function imageContentUrl(libraryId: string, imageId: string): string {
  return `/api/libraries/${enc(libraryId)}/images/${enc(imageId)}/content`;
}

/** A grid-sized rendition (longest side `size` px), never the full image. */
export function thumbnailUrl(libraryId: string, imageId: string, size: 128 | 256 | 512 = 256): string {
  return `/api/libraries/${enc(libraryId)}/images/${enc(imageId)}/thumbnail?size=${size}`;
}

export function exportUrl(jobId: string, format: 'jsonl' | 'csv'): string {
  return `/api/jobs/${enc(jobId)}/results/export?format=${format}`;
}

export function jobEventsUrl(jobId: string): string {
  return `/api/jobs/${enc(jobId)}/events`;
}

/** Every job event of the signed-in tenant: one stream per tab. */
export const TENANT_EVENTS_URL = '/api/events';
