import { useCallback, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { keys } from '../../../api/keys';
import { precheck, uploadImage } from '../../../api/upload';
import { errorMessage } from '../../../api/errors';

export interface UploadEntry {
  key: string;
  name: string;
  size: number;
  progress: number;
  state: 'queued' | 'uploading' | 'done' | 'error';
  error?: string;
}

const PARALLEL = 3;

/**
 * Uploads files one request each, a few at a time, so one bad file fails alone and each has its
 * own progress. The library's images and counts are invalidated once the batch settles.
 */
export function useUploadImages(libraryId: string) {
  const qc = useQueryClient();
  const [entries, setEntries] = useState<UploadEntry[]>([]);
  const seq = useRef(0);

  const patch = useCallback((key: string, p: Partial<UploadEntry>) => {
    setEntries((es) => es.map((e) => (e.key === key ? { ...e, ...p } : e)));
  }, []);

  const upload = useCallback(
    async (files: File[]) => {
      const batch = files.map((f) => {
        seq.current += 1;
        const bad = precheck(f);
        const entry: UploadEntry = { key: `u${seq.current}`, name: f.name, size: f.size, progress: 0, state: bad ? 'error' : 'queued', ...(bad ? { error: bad } : {}) };
        return { file: f, entry };
      });
      setEntries((es) => [...batch.map((b) => b.entry), ...es]);
      const todo = batch.filter((b) => b.entry.state === 'queued');
      let next = 0;
      const worker = async () => {
        while (next < todo.length) {
          const { file, entry } = todo[next]!;
          next += 1;
          patch(entry.key, { state: 'uploading' });
          try {
            await uploadImage(libraryId, file, (progress) => patch(entry.key, { progress }));
            patch(entry.key, { state: 'done', progress: 1 });
          } catch (e) {
            patch(entry.key, { state: 'error', error: errorMessage(e) });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
      if (todo.length > 0) {
        await qc.invalidateQueries({ queryKey: keys.libraries.detail(libraryId) });
        await qc.invalidateQueries({ queryKey: keys.libraries.lists() });
      }
    },
    [libraryId, patch, qc],
  );

  const clearFinished = useCallback(() => setEntries((es) => es.filter((e) => e.state === 'uploading' || e.state === 'queued')), []);
  return { entries, upload, clearFinished };
}
