import { afterEach, describe, expect, it, vi } from 'vitest';
import { MutationObserver, QueryClient, type QueryKey, type UseMutationOptions } from '@tanstack/react-query';
import { keys } from './keys';
import { ApiError } from './errors';
import { createLibraryMutation } from '../features/libraries/hooks/useCreateLibrary';
import { renameLibraryMutation } from '../features/libraries/hooks/useRenameLibrary';
import { deleteLibraryMutation } from '../features/libraries/hooks/useDeleteLibrary';
import { savePipelineMutation } from '../features/pipelines/hooks/useSavePipeline';
import { submitJobMutation } from '../features/jobs/hooks/useSubmitJob';
import { cancelJobMutation } from '../features/jobs/hooks/useCancelJob';
import { retryJobMutation } from '../features/jobs/hooks/useRetryJob';
import { bulkCancelJobsMutation } from '../features/jobs/hooks/useBulkCancelJobs';
import { bulkRetryJobsMutation } from '../features/jobs/hooks/useBulkRetryJobs';
import { previewStageMutation } from '../features/jobs/hooks/usePreviewStage';

const page = { limit: 50, offset: 0 };

/** Answers every request with `status` and `body`, recording the requests. */
function serve(status: number, body: unknown) {
  const requests: Request[] = [];
  vi.stubGlobal('fetch', async (req: Request) => {
    requests.push(req);
    return new Response(status === 204 ? null : JSON.stringify(body), {
      status,
      headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' },
    });
  });
  return requests;
}

function seeded(...queryKeys: QueryKey[]) {
  const qc = new QueryClient();
  for (const k of queryKeys) qc.setQueryData(k, { seeded: true });
  return qc;
}

function run<D, V>(qc: QueryClient, options: UseMutationOptions<D, Error, V>, vars: V) {
  return new MutationObserver<D, Error, V>(qc, options).mutate(vars);
}

const invalidated = (qc: QueryClient, k: QueryKey) => qc.getQueryState(k)?.isInvalidated;

afterEach(() => vi.unstubAllGlobals());

describe('mutations invalidate what they change', () => {
  it('create library: the library lists, not the pipelines', async () => {
    serve(201, { id: 'l1', name: 'x' });
    const qc = seeded(keys.libraries.list(page), keys.pipelines.list(page));
    const onSuccess = vi.fn();
    await run(qc, createLibraryMutation(qc, onSuccess), { name: 'x' });
    expect(invalidated(qc, keys.libraries.list(page))).toBe(true);
    expect(invalidated(qc, keys.pipelines.list(page))).toBe(false);
    expect(onSuccess).toHaveBeenCalledWith({ id: 'l1', name: 'x' });
  });

  it('rename library: its detail, images and the lists, not other libraries', async () => {
    const requests = serve(200, { id: 'l1', name: 'y' });
    const qc = seeded(keys.libraries.list(page), keys.libraries.detail('l1'), keys.libraries.imagePage('l1', page), keys.libraries.detail('l2'));
    await run(qc, renameLibraryMutation(qc), { id: 'l1', name: 'y' });
    expect(requests[0]!.method).toBe('PATCH');
    expect(new URL(requests[0]!.url).pathname).toBe('/api/libraries/l1');
    expect(invalidated(qc, keys.libraries.list(page))).toBe(true);
    expect(invalidated(qc, keys.libraries.detail('l1'))).toBe(true);
    expect(invalidated(qc, keys.libraries.imagePage('l1', page))).toBe(true);
    expect(invalidated(qc, keys.libraries.detail('l2'))).toBe(false);
  });

  it('delete library: all library queries', async () => {
    serve(204, null);
    const qc = seeded(keys.libraries.list(page), keys.libraries.detail('l1'), keys.jobs.list(page));
    await run(qc, deleteLibraryMutation(qc), 'l1');
    expect(invalidated(qc, keys.libraries.list(page))).toBe(true);
    expect(invalidated(qc, keys.libraries.detail('l1'))).toBe(true);
    expect(invalidated(qc, keys.jobs.list(page))).toBe(false);
  });

  it('save pipeline: the lists and that pipeline', async () => {
    serve(200, { id: 'p1', version: 2 });
    const qc = seeded(keys.pipelines.list(page), keys.pipelines.detail('p1'), keys.pipelines.detail('p2'));
    await run(qc, savePipelineMutation(qc), { id: 'p1', body: { name: 'n', stages: [{ name: 's', prompt: 'p', model: 'm' }] } });
    expect(invalidated(qc, keys.pipelines.list(page))).toBe(true);
    expect(invalidated(qc, keys.pipelines.detail('p1'))).toBe(true);
    expect(invalidated(qc, keys.pipelines.detail('p2'))).toBe(false);
  });

  it('submit job: the job lists, sending the idempotency key', async () => {
    const requests = serve(202, { id: 'j1' });
    const qc = seeded(keys.jobs.list(page), keys.jobs.detail('j0'));
    await run(qc, submitJobMutation(qc), { body: { pipeline_id: 'p', library_id: 'l' }, idempotencyKey: 'key-1' });
    expect(requests[0]!.headers.get('Idempotency-Key')).toBe('key-1');
    expect(invalidated(qc, keys.jobs.list(page))).toBe(true);
    expect(invalidated(qc, keys.jobs.detail('j0'))).toBe(false);
  });

  it('cancel and retry: that job and the lists', async () => {
    for (const make of [cancelJobMutation, retryJobMutation]) {
      serve(200, { id: 'j1' });
      const qc = seeded(keys.jobs.list(page), keys.jobs.detail('j1'), keys.jobs.detail('j2'));
      await run(qc, make(qc), 'j1');
      expect(invalidated(qc, keys.jobs.list(page))).toBe(true);
      expect(invalidated(qc, keys.jobs.detail('j1'))).toBe(true);
      expect(invalidated(qc, keys.jobs.detail('j2'))).toBe(false);
    }
  });

  it('bulk cancel and retry: the lists and each job sent, not others', async () => {
    for (const make of [bulkCancelJobsMutation, bulkRetryJobsMutation]) {
      const requests = serve(200, { results: [{ job_id: 'j1', outcome: 'done' }, { job_id: 'j2', outcome: 'conflict' }] });
      const qc = seeded(keys.jobs.list(page), keys.jobs.detail('j1'), keys.jobs.detail('j2'), keys.jobs.detail('j3'));
      const res = await run(qc, make(qc), ['j1', 'j2']);
      expect(res.results).toHaveLength(2);
      expect(await requests[0]!.json()).toEqual({ job_ids: ['j1', 'j2'] });
      expect(invalidated(qc, keys.jobs.list(page))).toBe(true);
      expect(invalidated(qc, keys.jobs.detail('j1'))).toBe(true);
      expect(invalidated(qc, keys.jobs.detail('j2'))).toBe(true);
      expect(invalidated(qc, keys.jobs.detail('j3'))).toBe(false);
    }
  });

  it('stage preview: posts the stage being edited and refreshes the job lists', async () => {
    const requests = serve(202, { id: 'j9', preview: true });
    const qc = seeded(keys.jobs.list(page), keys.pipelines.list(page));
    const body = { library_id: 'l', image_ids: ['i1'], stage: { name: 's', prompt: 'p', model: 'm' } };
    await run(qc, previewStageMutation(qc), body);
    expect(new URL(requests[0]!.url).pathname).toBe('/api/jobs/preview');
    expect(await requests[0]!.json()).toEqual(body);
    expect(invalidated(qc, keys.jobs.list(page))).toBe(true);
    expect(invalidated(qc, keys.pipelines.list(page))).toBe(false);
  });

  it('a failed mutation invalidates nothing and rejects with the typed problem', async () => {
    serve(409, { type: '/problems/conflict', title: 'Conflict', status: 409, code: 'conflict', detail: 'the job already finished' });
    const qc = seeded(keys.jobs.list(page), keys.jobs.detail('j1'));
    const err = await run(qc, cancelJobMutation(qc), 'j1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('conflict');
    expect(invalidated(qc, keys.jobs.detail('j1'))).toBe(false);
  });
});
