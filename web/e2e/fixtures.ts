import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { test as base, expect, request, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';

export const API_KEY = process.env.E2E_API_KEY ?? '';
export const SAMPLES = join(dirname(fileURLToPath(import.meta.url)), '../../samples/images');
export const sampleFiles = () => readdirSync(SAMPLES).filter((f) => /\.(png|jpe?g)$/i.test(f)).map((f) => join(SAMPLES, f));

export function uniqueName(prefix: string): string {
  return `${prefix} ${randomUUID().slice(0, 8)}`;
}

interface Data {
  libraryId: string;
  libraryName: string;
  pipelineId: string;
  pipelineName: string;
  imageCount: number;
}

/** Data made through the API (not the UI) once per worker, deleted afterwards. */
async function createLibrary(api: APIRequestContext, prefix: string): Promise<{ id: string; name: string }> {
  const name = uniqueName(prefix);
  const res = await api.post('/api/libraries', { data: { name } });
  expect(res.status()).toBe(201);
  return { id: (await res.json()).id as string, name };
}

async function uploadSamples(api: APIRequestContext, libraryId: string): Promise<number> {
  const files = sampleFiles();
  const up = await api.post(`/api/libraries/${libraryId}/images`, {
    multipart: Object.fromEntries(files.map((f, i) => [`file${i}`, { name: f.split('/').pop()!, mimeType: f.endsWith('.png') ? 'image/png' : 'image/jpeg', buffer: readFileSync(f) }])),
  });
  expect(up.status()).toBe(201);
  return files.length;
}

export const test = base.extend<
  { shoot: (name: string) => Promise<void>; cspClean: void },
  { api: APIRequestContext; data: Data; bigLibrary: { id: string; imageCount: number } }
>({
  api: [
    async ({}, use) => {
      if (!API_KEY) throw new Error('set E2E_API_KEY to a tenant API key');
      const ctx = await request.newContext({
        baseURL: process.env.BASE_URL ?? 'http://127.0.0.1:8080',
        extraHTTPHeaders: { Authorization: `Bearer ${API_KEY}` },
      });
      await use(ctx);
      await ctx.dispose();
    },
    { scope: 'worker' },
  ],
  data: [
    async ({ api }, use) => {
      const { id: libraryId, name: libraryName } = await createLibrary(api, 'e2e library');
      const imageCount = await uploadSamples(api, libraryId);
      const pipelineName = uniqueName('e2e pipeline');
      const pipe = await api.post('/api/pipelines', {
        data: {
          name: pipelineName,
          stages: [
            {
              name: 'detect',
              prompt: 'Is there an animal in this image? Answer as JSON.',
              json_schema: { type: 'object', properties: { animal: { type: 'boolean' } }, required: ['animal'] },
              filter: { type: 'field', pointer: '/animal', op: 'eq', value: true },
            },
            { name: 'describe', prompt: 'Describe the animal.' },
          ],
        },
      });
      expect(pipe.status()).toBe(201);
      const pipelineId = (await pipe.json()).id as string;
      try {
        await use({ libraryId, libraryName, pipelineId, pipelineName, imageCount });
      } finally {
        await api.delete(`/api/pipelines/${pipelineId}`);
        await api.delete(`/api/libraries/${libraryId}`);
      }
    },
    { scope: 'worker' },
  ],
  // Enough images that a job is still running when the test cancels it.
  bigLibrary: [
    async ({ api }, use) => {
      const { id } = await createLibrary(api, 'e2e big library');
      let imageCount = 0;
      for (let i = 0; i < 10; i += 1) imageCount += await uploadSamples(api, id);
      try {
        await use({ id, imageCount });
      } finally {
        await api.delete(`/api/libraries/${id}`);
      }
    },
    { scope: 'worker' },
  ],
  // Every test fails on a Content-Security-Policy violation or an uncaught page error.
  cspClean: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      await use();
      expect(problems).toEqual([]);
    },
    { auto: true },
  ],
  // Screenshots of a page in light and dark, desktop and phone width, kept as test artifacts.
  shoot: async ({ page }, use, testInfo) => {
    await use((name) => screenshots(page, testInfo, name));
  },
});

async function screenshots(page: Page, testInfo: TestInfo, name: string) {
  const size = page.viewportSize();
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [w, h, tag] of [[1280, 900, 'desktop'], [390, 844, 'phone']] as const) {
      await page.setViewportSize({ width: w, height: h });
      await page.screenshot({ path: testInfo.outputPath(`${name}-${scheme}-${tag}.png`), fullPage: true });
    }
  }
  await page.emulateMedia({ colorScheme: null });
  if (size) await page.setViewportSize(size);
}

export { expect };

/**
 * The Cohere stand-in's admin API (STANDIN_ADMIN_URL, e.g. http://127.0.0.1:8090): makes it
 * refuse the images with these sha256 hashes with a permanent 400 (empty: none).
 */
export async function rejectImages(hashes: string[]): Promise<void> {
  const admin = process.env.STANDIN_ADMIN_URL;
  if (!admin) throw new Error('set STANDIN_ADMIN_URL to the Cohere stand-in admin API');
  const ctx = await request.newContext();
  const res = await ctx.patch(`${admin}/admin/config`, { data: { reject_images: hashes } });
  expect(res.status()).toBe(200);
  await ctx.dispose();
}
