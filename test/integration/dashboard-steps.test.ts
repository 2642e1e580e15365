import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { browserAvailable, launchBrowser } from '../support/browser';
import { serveDashboard } from '../../lib/dashboard/serve-dashboard';

/**
 * The page in a real browser against answers of the shape GET /jobs/runs/{id} gives once the
 * export runs a step per schema (`steps`, with `progress` while a step runs, and the run's
 * `progress` totals). The page is served by serveDashboard itself; the API answers are fixtures,
 * so this tests the page's rendering of that shape, not the API (test/e2e/dashboard.test.ts does).
 */

const KEY = 'fixture-key';
const RUN_ID = '11111111-2222-4333-8444-555555555555';
const UNSPLIT_RUN_ID = '66666666-2222-4333-8444-555555555555';
const HOSTILE = '<img src=x onerror=alert(1)>';
/** What GET /jobs/runs/{id} gives deployed as `logs` (lib/runs/logs-insights-link.ts), shortened. */
const LOGS = 'https://eu-west-2.console.aws.amazon.com/cloudwatch/home?region=eu-west-2#logsV2:logs-insights$3FqueryDetail$3D~(end~\'2026-11-25T10*3a30*3a00.000Z)';

const activeRun = {
  id: RUN_ID,
  job: 'export',
  trigger: 'http',
  status: 'running',
  params: { schemas: ['water', HOSTILE, 'crm', 'returns', 'idm'] },
  attempts: 1,
  requestedAt: '2026-11-25T10:00:00.000Z',
  startedAt: '2026-11-25T10:00:01.000Z',
  finishedAt: null,
  progress: { schemasDone: 1, schemasTotal: 5, tables: 12, rows: 345678, bytes: 5 * 1024 * 1024 },
  steps: [
    { name: 'water', status: 'succeeded', attempts: 1, startedAt: '2026-11-25T10:00:01.000Z', finishedAt: '2026-11-25T10:00:09.000Z', result: { tables: 10, rows: 300000, bytes: 4194304, compressedBytes: 1000, key: 'export/water.tgz' }, error: null },
    { name: HOSTILE, status: 'running', attempts: 1, startedAt: '2026-11-25T10:00:09.000Z', finishedAt: null, progress: { tablesDone: 2, rows: 45678, bytes: 1048576 }, result: null, error: null },
    { name: 'crm', status: 'failed', attempts: 2, startedAt: null, finishedAt: null, result: null, error: '<script>alert("step")</script> went wrong' },
    { name: 'returns', status: 'timed_out', attempts: 1, startedAt: '2026-11-25T10:00:02.000Z', finishedAt: '2026-11-25T10:15:02.000Z', result: null, error: 'The lease expired' },
    // Steps run at once, in no set order: one listed after the running step may not have started.
    { name: 'idm', status: 'queued', attempts: 0, startedAt: null, finishedAt: null, result: null, error: null },
  ],
  result: null,
  error: null,
  lambdaRequestId: null,
  logs: LOGS,
};

/** A run the coordinator has taken but not yet fanned out: no steps yet, no progress. */
const unsplitRun = {
  ...activeRun,
  id: UNSPLIT_RUN_ID,
  params: { schemas: ['crm', 'idm'] },
  progress: null,
  steps: [],
  // Not the AWS console: the page must not link it.
  logs: 'https://eu-west-2.console.aws.amazon.com.example.net/cloudwatch/home',
};

let exportRuns: (typeof activeRun | typeof unsplitRun)[] = [activeRun];

function answer(path: string): { status: number; body: unknown } {
  if (path.startsWith('/jobs/export/runs')) return { status: 200, body: { job: 'export', runs: exportRuns, schedule: null, schemas: ['water', HOSTILE, 'crm', 'returns', 'idm'] } };
  if (path.startsWith('/jobs/time-limited/runs')) return { status: 200, body: { job: 'time-limited', runs: [], schedule: null } };
  if (path === `/jobs/runs/${RUN_ID}`) return { status: 200, body: activeRun };
  if (path === `/jobs/runs/${UNSPLIT_RUN_ID}`) return { status: 200, body: unsplitRun };
  return { status: 404, body: { error: 'no such fixture' } };
}

let server: Server;
let baseUrl: string;
let browser: Browser;
let page: Page;
const dialogs: string[] = [];

const hasBrowser = browserAvailable();

beforeAll(async () => {
  if (!hasBrowser) return;
  server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/jobs/dashboard') {
      const page = serveDashboard({ queryStringParameters: url.searchParams.size ? Object.fromEntries(url.searchParams) : null });
      response.writeHead(page.statusCode, page.headers as Record<string, string>).end(page.body);
      return;
    }
    if (request.headers['x-api-key'] !== KEY) {
      response.writeHead(403, { 'Content-Type': 'application/json' }).end('{"message":"Forbidden"}');
      return;
    }
    if (request.method === 'POST' && url.pathname === '/jobs/time-limited') {
      // What the API answers when the worker cannot be invoked (handleStartJobRequest).
      response.writeHead(503, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'The time-limited job could not be started; try again later', runId: RUN_ID }));
      return;
    }
    const { status, body } = answer(url.pathname + url.search);
    response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe.skipIf(!hasBrowser)('the dashboard with per-schema steps', () => {
  it('draws a bar per step from `steps`, with each step’s status and figures, and the run’s totals', async () => {
    await page.goto(`${baseUrl}/jobs/dashboard`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByLabel('API key').press('Enter');
    const active = page.locator('#job-export .active');
    await expect.poll(() => active.locator('.steps .name').allInnerTexts(), { timeout: 15_000 }).toEqual([
      'water succeeded',
      `${HOSTILE} running`,
      'crm failed',
      'returns timed_out',
      'idm queued',
    ]);
    const figures = await active.locator('.steps .figures').allInnerTexts();
    expect(figures).toEqual(['10 tables · 300,000 rows · 4.0 MB', '2 tables · 45,678 rows · 1.0 MB', '', '', '']);
    expect(await active.locator('.total-line').innerText()).toBe('1 of 5 schemas · 12 tables · 345,678 rows · 5.0 MB');
    // Bars: the total (1 of 5), then water full, the running step indeterminate, crm (failed) and
    // returns (timed out) full as ended steps, idm (queued, though after a running one) empty.
    const bars = await Promise.all(
      (await active.locator('progress').all()).map(async (bar) => ({ max: await bar.getAttribute('max'), value: await bar.getAttribute('value') })),
    );
    expect(bars).toEqual([
      { max: '5', value: '1' },
      { max: '1', value: '1' },
      { max: '1', value: null },
      { max: '1', value: '1' },
      { max: '1', value: '1' },
      { max: '1', value: '0' },
    ]);
    expect(await active.locator('pre.error').allInnerTexts()).toEqual(['<script>alert("step")</script> went wrong', 'The lease expired']);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('before the coordinator has recorded the steps: a bar per requested schema, all queued, none guessed done or running', async () => {
    exportRuns = [unsplitRun];
    await page.reload();
    const active = page.locator('#job-export .active');
    await expect.poll(() => active.locator('.steps .name').allInnerTexts(), { timeout: 15_000 }).toEqual(['crm queued', 'idm queued']);
    expect(await active.locator('.total-line').innerText()).toBe('0 of 2 schemas · — tables · — rows · —');
    const values = await Promise.all((await active.locator('.steps progress').all()).map((bar) => bar.getAttribute('value')));
    expect(values).toEqual(['0', '0']);
  });

  it('links a run’s logs in a new tab, only when they are an https address on the AWS console', async () => {
    const logsFact = async (runId: string) => {
      await page.evaluate(`location.hash = '#run=${runId}'`);
      await expect.poll(() => page.locator('#run-detail-title').innerText(), { timeout: 15_000 }).toBe(`Run ${runId}`);
      return page.locator('#run-detail dl.facts a', { hasText: 'Logs (CloudWatch Logs Insights)' });
    };
    const link = await logsFact(RUN_ID);
    expect(await link.count()).toBe(1);
    expect(await Promise.all(['href', 'rel', 'target'].map((name) => link.getAttribute(name)))).toEqual([LOGS, 'noopener noreferrer', '_blank']);
    expect(await (await logsFact(UNSPLIT_RUN_ID)).count()).toBe(0);
    await page.locator('#run-detail-close').click();
  });

  it('shows the error of a start that answers 503', async () => {
    const panel = page.locator('#job-time-limited');
    await panel.getByRole('button', { name: 'Start time-limited' }).click();
    expect(await page.locator('#confirm-text').innerText()).toBe('Start a time-limited run?');
    await page.locator('#confirm-yes').click();
    await expect
      .poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 })
      .toBe('Not started (HTTP 503): The time-limited job could not be started; try again later');
  });
});
