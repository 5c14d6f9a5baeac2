// The dashboard in headless Chromium (Debian's /usr/bin/chromium via the UI's playwright-core):
//   1. /jobs first render with HISTORY_JOBS jobs in history: navigation start to the first job
//      row in the DOM (median of RUNS cold page loads, each in a fresh browser context), and how
//      many jobs the page fetched;
//   2. /jobs/{JOB} of a 10,000-image job: the image grid scrolled to its end in steps; the
//      most <img> nodes (and grid tiles) in the DOM at any moment, and the event streams opened.
// Environment: BASE (api serving the UI), KEY (API key), JOB, HISTORY_JOBS, RUNS (default 5).
// Selectors: the job row is the link named "Job <uuid>" (role link), the grid the region
// named "Job images"; tiles are its listitems.
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const { BASE, KEY, JOB } = process.env;
const HISTORY_JOBS = Number(process.env.HISTORY_JOBS ?? 10000);
const RUNS = Number(process.env.RUNS ?? 5);
const FIRST_RENDER_TARGET_MS = 1000;
const IMG_TARGET = 200;
const JOB_ROW = /^Job [0-9a-f-]{36}$/;
// The same first-row test for the in-page observer (the link's accessible name is its aria-label).
const JOB_ROW_CSS = 'a[aria-label^="Job "][href^="/jobs/"]';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function signedInContext() {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 } });
  const res = await context.request.post('/api/session', { data: { api_key: KEY }, headers: { Origin: BASE } });
  if (!res.ok()) throw new Error(`sign-in failed: ${res.status()} ${await res.text()}`);
  return context;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

try {
  // 1. Jobs page.
  const times = [];
  const fetched = [];
  for (let run = 1; run <= RUNS; run++) {
    const context = await signedInContext();
    const page = await context.newPage();
    await page.addInitScript((css) => {
      // performance.now() counts from the navigation's start (the document's time origin).
      const seen = () => {
        if (window.__firstRow === undefined && document.querySelector(css)) {
          window.__firstRow = performance.now();
          requestAnimationFrame(() => { window.__firstRowFrame = performance.now(); });
        }
      };
      new MutationObserver(seen).observe(document, { childList: true, subtree: true });
    }, JOB_ROW_CSS);
    const jobsFetched = [];
    page.on('response', async (r) => {
      const url = new URL(r.url());
      if (url.pathname === '/api/jobs/history' && r.ok()) {
        const body = await r.json().catch(() => null);
        const t = r.request().timing();
        if (body) jobsFetched.push({ limit: url.searchParams.get('limit'), items: body.items.length, total: body.total, ms: Math.round(t.responseEnd - t.requestStart) });
      }
    });
    await page.goto('/jobs', { waitUntil: 'commit' });
    const row = page.getByRole('link', { name: JOB_ROW }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    const rendered = await page.waitForFunction(() => window.__firstRowFrame, null, { timeout: 10_000 }).then((h) => h.jsonValue());
    await page.waitForLoadState('networkidle').catch(() => {});
    const rows = await page.getByRole('link', { name: JOB_ROW }).count();
    const history = await page.evaluate(() => performance.getEntriesByType('resource').find((e) => e.name.includes('/api/jobs/history'))?.startTime ?? -1);
    const items = jobsFetched.reduce((a, f) => a + f.items, 0);
    times.push(rendered);
    fetched.push(items);
    console.log(`# jobs page run=${run}: first job row at ${rendered.toFixed(0)} ms; history request sent at ${history.toFixed(0)} ms; ${rows} rows shown; ` +
      `history requests (ms: request to end of answer) ${JSON.stringify(jobsFetched)}`);
    if (jobsFetched.length === 0 || jobsFetched[0].total !== HISTORY_JOBS) throw new Error('history does not hold the inserted jobs');
    await context.close();
  }
  const med = median(times);
  console.log(`jobs page first render (${HISTORY_JOBS} jobs in history): median ${med.toFixed(0)} ms of ${RUNS} ` +
    `(${times.map((t) => t.toFixed(0)).join(', ')} ms), jobs fetched ${Math.max(...fetched)} of ${HISTORY_JOBS} ` +
    `(target < ${FIRST_RENDER_TARGET_MS} ms, never all) ${med < FIRST_RENDER_TARGET_MS && Math.max(...fetched) < HISTORY_JOBS ? 'met' : 'NOT MET'}`);

  // 2. Job detail.
  const context = await signedInContext();
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__maxImg = 0;
    window.__maxTiles = 0;
    const count = () => {
      window.__maxImg = Math.max(window.__maxImg, document.getElementsByTagName('img').length);
      window.__maxTiles = Math.max(window.__maxTiles, document.querySelectorAll('[role="listitem"]').length);
    };
    new MutationObserver(count).observe(document, { childList: true, subtree: true });
  });
  const streams = new Map(); // url -> times opened
  let open = 0;
  let maxOpen = 0;
  const isStream = (r) => r.resourceType() === 'eventsource' || (r.headers().accept ?? '').includes('text/event-stream');
  page.on('request', (r) => {
    if (!isStream(r)) return;
    const path = new URL(r.url()).pathname;
    streams.set(path, (streams.get(path) ?? 0) + 1);
    maxOpen = Math.max(maxOpen, ++open);
  });
  const closed = (r) => { if (isStream(r)) open -= 1; };
  page.on('requestfinished', closed);
  page.on('requestfailed', closed);
  const itemRequests = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === `/api/jobs/${JOB}/items`) itemRequests.push(r.url()); });

  const started = Date.now();
  await page.goto(`/jobs/${JOB}`);
  const grid = page.getByRole('region', { name: 'Job images' });
  await grid.waitFor({ state: 'visible', timeout: 30_000 });
  await grid.getByRole('listitem').first().waitFor({ timeout: 30_000 });
  let steps = 0;
  let longestFrame = 0;
  for (;;) {
    // One viewport further, then wait (bounded) until the tiles in view are loaded.
    const state = await grid.evaluate(async (el) => {
      el.scrollTop += el.clientHeight;
      const gaps = [];
      let last = performance.now();
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        gaps.push(now - last);
        last = now;
      }
      return { top: el.scrollTop, height: el.scrollHeight, view: el.clientHeight, frame: Math.max(...gaps) };
    });
    longestFrame = Math.max(longestFrame, state.frame);
    steps += 1;
    await page.waitForFunction(
      (label) => !document.querySelector(`[aria-label="${label}"] [aria-label="Loading"]`), 'Job images', { timeout: 30_000 });
    if (state.top + state.view >= state.height - 1) break;
    if (steps > 5000) throw new Error('the grid did not reach its end');
  }
  const lastTile = await grid.getByRole('listitem').last().getAttribute('data-index');
  const { maxImg, maxTiles, imgNow } = await page.evaluate(() => ({ maxImg: window.__maxImg, maxTiles: window.__maxTiles, imgNow: document.images.length }));
  // Streams still open once the page settled (a closed one would be counted by requestfinished).
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`# job page: ${steps} scroll steps in ${seconds} s to tile ${lastTile}; ${itemRequests.length} item pages loaded; ` +
    `longest frame after a step ${longestFrame.toFixed(0)} ms; <img> now ${imgNow}; streams opened ${JSON.stringify(Object.fromEntries(streams))}`);
  if (Number(lastTile) !== 9999) throw new Error(`the grid ended at tile ${lastTile}`);
  const jobStreams = [...streams.keys()].filter((p) => p.startsWith(`/api/jobs/${JOB}/`)).length;
  const tenantStreams = [...streams.keys()].filter((p) => p === '/api/events').length;
  const streamsOk = jobStreams === 1 && tenantStreams <= 1 && maxOpen <= 2;
  console.log(`job page (10000 images, scrolled to the end): max <img> nodes ${maxImg}, max grid tiles ${maxTiles} ` +
    `(target < ${IMG_TARGET}) ${maxImg < IMG_TARGET ? 'met' : 'NOT MET'}; event streams open at most ${maxOpen} ` +
    `(${jobStreams} for the job, ${tenantStreams} tenant-wide; target 1 + at most 1) ${streamsOk ? 'met' : 'NOT MET'}`);
  await context.close();
} finally {
  await browser.close();
}
