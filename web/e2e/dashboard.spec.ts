import AxeBuilder from '@axe-core/playwright';
import type { Locator } from '@playwright/test';
import { test, expect, rejectImages, sampleFiles, uniqueName, API_KEY } from './fixtures';

test.describe.configure({ mode: 'serial' });

async function noSeriousA11yViolations(page: import('@playwright/test').Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

test('libraries: create, upload the samples with per-file results, grid of thumbnails', async ({ page, shoot }) => {
  const name = uniqueName('ui library');
  await page.goto('/libraries');
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create library' }).click();
  await expect(page.getByRole('heading', { name })).toBeVisible();
  const files = sampleFiles();
  await page.getByLabel('Choose image files to upload').setInputFiles([...files, 'e2e/fixtures.ts']);
  await expect(page.getByText(`${files.length} uploaded, 1 failed`)).toBeVisible();
  await expect(page.getByText('not a PNG, JPEG, WEBP or GIF image')).toBeVisible();
  const grid = page.getByRole('region', { name: 'Library images' });
  await expect(grid.getByRole('listitem')).toHaveCount(files.length);
  // Grid tiles load small renditions from the api, never the full images.
  const srcs = await grid.locator('img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  expect(srcs.length).toBe(files.length);
  for (const src of srcs) expect(src).toContain('/thumbnail?size=256');
  await noSeriousA11yViolations(page);
  await shoot('library');
  await page.getByRole('button', { name: 'Delete library' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await expect(page).toHaveURL(/\/libraries$/);
});

test('stage tester: the stage being edited runs on a chosen image and its answer shows', async ({ page, data }) => {
  await page.goto('/pipelines/new');
  const stage1 = page.getByRole('region', { name: /Stage 1/ });
  await stage1.getByLabel('Prompt', { exact: true }).fill('Is there an animal in this image? Answer as JSON.');
  await stage1.getByLabel(/JSON schema/).fill('{"type": "object", "properties": {"animal": {"type": "boolean"}}, "required": ["animal"]}');
  await stage1.getByText(/Try this stage/).click();
  await stage1.getByLabel('Library').selectOption({ label: data.libraryName });
  await stage1.getByRole('checkbox').first().check();
  await stage1.getByRole('button', { name: /^Run on 1 image$/ }).click();
  await expect(stage1.locator('pre')).toContainText('animal', { timeout: 60_000 });
  await expect(stage1.locator('.verdict').first()).toHaveText(/passed|filtered out/);
  // Previews stay out of the job history unless asked for.
  await page.goto('/jobs');
  await expect(page.getByText('preview', { exact: true })).toHaveCount(0);
  await page.getByLabel('Show stage previews').check();
  await expect(page.getByText('preview', { exact: true }).first()).toBeVisible();
});

test('health strip shows the api and the workers', async ({ page }) => {
  await page.goto('/jobs');
  const health = page.getByRole('region', { name: 'System health' });
  await expect(health).toContainText('API ready');
  await expect(health).toContainText(/workers (running|paused)/);
});

test('pipeline editor: a 422 shows at the right field, then a two-stage pipeline with a filter saves', async ({ page, shoot, api }) => {
  const name = uniqueName('ui pipeline');
  await page.goto('/pipelines/new');
  await page.getByLabel('Name').first().fill(name);
  const stage1 = page.getByRole('region', { name: /Stage 1/ });
  await stage1.getByLabel('Name').fill('detect');
  await stage1.getByLabel('Prompt', { exact: true }).fill('Is there an animal? Answer as JSON.');
  await stage1.getByLabel('Model').fill('not a model!');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  // The api's pointer /stages/0/model lands on stage 1's model field.
  await expect(stage1.getByLabel('Model')).toHaveAttribute('aria-invalid', 'true');
  await expect(stage1.getByLabel('Model')).toHaveAccessibleDescription(/letters, digits/);
  await stage1.getByLabel('Model').fill('command-a-vision-07-2025');
  await stage1.getByLabel(/JSON schema/).fill('{"type": "object", "properties": {"animal": {"type": "boolean"}}, "required": ["animal"]}');
  await stage1.getByRole('button', { name: 'Add a filter' }).click();
  await stage1.getByLabel('JSON pointer').fill('/animal');
  await stage1.getByLabel('Value').fill('true');
  await page.getByRole('button', { name: 'Add stage' }).click();
  const stage2 = page.getByRole('region', { name: /Stage 2/ });
  await stage2.getByLabel('Name').fill('describe');
  await stage2.getByLabel('Prompt', { exact: true }).fill('Describe the animal.');
  await shoot('pipeline-editor');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  await expect(page).toHaveURL(/\/pipelines\/[0-9a-f-]{36}$/);
  const id = page.url().split('/').pop()!;
  const saved = await (await api.get(`/api/pipelines/${id}`)).json();
  expect(saved.stages.map((s: { name: string }) => s.name)).toEqual(['detect', 'describe']);
  expect(saved.stages[0].filter).toEqual({ type: 'field', pointer: '/animal', op: 'eq', value: true });
  await api.delete(`/api/pipelines/${id}`);
});

test('submit, watch the job finish live, funnel matches the api, open a drawer, export CSV', async ({ page, data, api, shoot }) => {
  await page.goto(`/submit?pipeline=${data.pipelineId}&library=${data.libraryId}`);
  await page.getByRole('button', { name: 'Review and submit' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(`at most ${data.imageCount * 2}`);
  let submits = 0;
  page.on('request', (r) => {
    if (r.url().endsWith('/api/jobs/submit')) submits += 1;
  });
  await dialog.getByRole('button', { name: 'Submit job' }).dblclick();
  await page.getByRole('link', { name: /follow job/ }).click();
  expect(submits).toBe(1);
  await expect(page.locator('.status').first()).toHaveText(/^completed/, { timeout: 60_000 });
  const jobId = page.url().split('/jobs/')[1]!.split(/[?#]/)[0]!;
  const job = await (await api.get(`/api/jobs/${jobId}`)).json();
  const detect = job.stages[0];
  await expect(page.getByRole('link', { name: `Stage detect: ${detect.passed} passed; show these images` })).toBeVisible();
  await expect(page.getByRole('link', { name: `Stage detect: ${detect.filtered_out} filtered out; show these images` })).toBeVisible();
  await noSeriousA11yViolations(page);
  await shoot('job-detail');
  await page.getByRole('link', { name: `Stage detect: ${detect.passed} passed; show these images` }).click();
  await expect(page.getByText(`${detect.passed} images`)).toBeVisible();
  await page.getByRole('region', { name: 'Job images' }).getByRole('button').first().click();
  const drawer = page.getByRole('dialog');
  await expect(drawer.getByRole('heading', { name: /detect/ })).toBeVisible();
  await expect(drawer.getByText('Prompt').first()).toBeVisible();
  await shoot('job-drawer');
  await page.keyboard.press('Escape');
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'CSV' }).click();
  const csv = await (await download).path();
  expect(csv).toBeTruthy();
});

/** The figure (`.stat .v`) labelled `name` under `scope`. */
function figure(scope: Locator, name: string): Locator {
  return scope.locator('.stat').filter({ has: scope.page().locator('.k', { hasText: new RegExp(`^${name}$`) }) }).locator('.v');
}

test('the submit form estimates the job before it exists; the job page shows cost so far and time left', async ({ page, data, bigLibrary, api, shoot }) => {
  const jobsBefore = (await (await api.get('/api/jobs/history?limit=1')).json()).total as number;
  const expected = (await (await api.post('/api/jobs/estimate', { data: { pipeline_id: data.pipelineId, library_id: bigLibrary.id } })).json()) as { max_calls: number };
  expect(expected.max_calls).toBe(bigLibrary.imageCount * 2);
  await page.goto(`/submit?pipeline=${data.pipelineId}&library=${bigLibrary.id}`);
  const estimate = page.getByRole('region', { name: 'Estimate' });
  await expect(figure(estimate, 'Images')).toHaveText(bigLibrary.imageCount.toLocaleString('en-US'));
  await expect(figure(estimate, 'Model calls, at most')).toHaveText(expected.max_calls.toLocaleString('en-US'));
  await expect(figure(estimate, 'Estimated cost')).toHaveText(/^\$[\d.,]+ – \$[\d.,]+$/);
  await expect(figure(estimate, 'Estimated time')).toHaveText(/^≈ \d+ (s|min|h|d)/);
  await expect(estimate).toContainText('Prices as of');
  // Choosing images estimates them instead.
  await page.getByLabel('Choose images').check();
  await page.getByRole('group', { name: 'Images to analyse' }).getByRole('checkbox').first().click();
  await expect(figure(estimate, 'Images')).toHaveText('1');
  await expect(figure(estimate, 'Model calls, at most')).toHaveText('2');
  await page.getByRole('radio', { name: /^All \d/ }).check();
  await expect(figure(estimate, 'Images')).toHaveText(bigLibrary.imageCount.toLocaleString('en-US'));
  await noSeriousA11yViolations(page);
  await shoot('submit-estimate');
  // Estimating made no job.
  expect((await (await api.get('/api/jobs/history?limit=1')).json()).total).toBe(jobsBefore);

  await page.getByRole('button', { name: 'Review and submit' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(/Estimated cost \$[\d.,]+ – \$[\d.,]+, done in about \d+/);
  await dialog.getByRole('button', { name: 'Submit job' }).click();
  await page.getByRole('link', { name: /follow job/ }).click();
  const jobId = page.url().split('/jobs/')[1]!.split(/[?#]/)[0]!;
  await expect(figure(page.locator('main'), 'Time left')).toHaveText(/^(≈ \d+ (s|min|h|d).*|finishing)$/);
  await expect(figure(page.locator('main'), 'Cost so far')).toHaveText(/^\$[\d.,]+$/);
  await shoot('job-eta');
  expect((await api.post(`/api/jobs/${jobId}/cancel`)).status()).toBe(200);
  await expect(page.locator('.status').first()).toHaveText('cancelled', { timeout: 30_000 });
  await expect(figure(page.locator('main'), 'Time left')).toHaveText('done');
  await expect(figure(page.locator('main'), 'Cost')).toHaveText(/^\$[\d.,]+$/);
});

test('jobs list, cancel a running job', async ({ page, data, bigLibrary, shoot }) => {
  await page.goto(`/submit?pipeline=${data.pipelineId}&library=${bigLibrary.id}`);
  await page.getByLabel('Priority').selectOption('low');
  await page.getByRole('button', { name: 'Review and submit' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Submit job' }).click();
  await page.getByRole('link', { name: /follow job/ }).click();
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
  await expect(page.locator('.status').first()).toHaveText('cancelled', { timeout: 30_000 });
  // The grid is virtualized: only the rows in view are in the DOM.
  const tiles = page.getByRole('region', { name: 'Job images' }).locator('img');
  await expect(tiles.first()).toBeVisible();
  expect(await tiles.count()).toBeLessThan(bigLibrary.imageCount);
  await page.goto('/jobs');
  await expect(page.getByRole('table')).toBeVisible();
  await noSeriousA11yViolations(page);
  await shoot('jobs');
});

test('the job list follows one tenant-wide stream; bulk cancel of selected jobs', async ({ page, data, bigLibrary, api }) => {
  const streams: string[] = [];
  page.on('request', (r) => {
    if (r.headers().accept === 'text/event-stream') streams.push(new URL(r.url()).pathname);
  });
  await page.goto('/jobs');
  await expect(page.getByText('● live')).toBeVisible();
  // A job submitted elsewhere appears without a reload.
  const ids: string[] = [];
  for (let i = 0; i < 2; i += 1) {
    const res = await api.post('/api/jobs/submit', { data: { pipeline_id: data.pipelineId, library_id: bigLibrary.id, priority: 'low' } });
    expect(res.status()).toBe(202);
    ids.push((await res.json()).id as string);
  }
  for (const id of ids) await expect(page.getByRole('link', { name: `Job ${id}` })).toBeVisible();
  for (const id of ids) await page.getByRole('checkbox', { name: `Select job ${id}` }).check();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel jobs' }).click();
  await expect(page.getByRole('region', { name: 'Selected jobs' })).toContainText('2 done');
  for (const id of ids) expect((await (await api.get(`/api/jobs/${id}`)).json()).status).toBe('cancelled');
  // Never one stream per row: the page holds the tenant stream only.
  expect(new Set(streams)).toEqual(new Set(['/api/events']));
});

test('retry a job with failed items', async ({ page, data, api }) => {
  const images = (await (await api.get(`/api/libraries/${data.libraryId}/images?limit=200`)).json()).items as { content_hash: string }[];
  const rejected = images[0]!.content_hash;
  await rejectImages([rejected]);
  try {
    const res = await api.post('/api/jobs/submit', { data: { pipeline_id: data.pipelineId, library_id: data.libraryId } });
    expect(res.status()).toBe(202);
    const jobId = (await res.json()).id as string;
    await page.goto(`/jobs/${jobId}`);
    await expect(page.locator('.status').first()).toHaveText('completed with errors', { timeout: 60_000 });
    const retry = page.getByRole('button', { name: 'Retry 1 failed' });
    await rejectImages([]);
    await retry.click();
    // The failed item runs again and now gets an answer: the job ends without errors.
    await expect(page.locator('.status').first()).toHaveText('completed', { timeout: 60_000 });
    const job = await (await api.get(`/api/jobs/${jobId}`)).json();
    expect(job.counts.failed).toBe(0);
  } finally {
    await rejectImages([]);
  }
});

test('pages have no serious accessibility violations', async ({ page, shoot }) => {
  for (const [path, name] of [['/libraries', 'libraries'], ['/pipelines', 'pipelines'], ['/submit', 'submit']] as const) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await noSeriousA11yViolations(page);
    await shoot(name);
  }
});

test('a cross-site write with the session cookie is refused', async ({ page }) => {
  await page.goto('/jobs');
  const res = await page.request.post('/api/libraries', {
    headers: { Origin: 'https://attacker.example', 'Sec-Fetch-Site': 'cross-site' },
    data: { name: uniqueName('cross-site') },
  });
  expect(res.status()).toBe(403);
  expect((await res.json()).code).toBe('cross_site_request');
});

test('sign out ends the session', async ({ page, browser }) => {
  await page.goto('/jobs');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  const res = await page.request.get('/api/session');
  expect(res.status()).toBe(401);
  // The saved state's cookie is revoked server-side too: a fresh context with it is refused.
  const ctx = await browser.newContext({ storageState: 'e2e/.auth/state.json' });
  expect((await ctx.request.get('/api/libraries')).status()).toBe(401);
  await ctx.close();
  expect(API_KEY).not.toBe('');
});
