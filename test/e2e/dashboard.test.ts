import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import type { Browser, Locator, Page } from 'playwright-core';
import { browserAvailable, launchBrowser } from '../support/browser';
import { adminUrl, createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';
import { localApiKey, startOffline, verifyUploadsThroughOffline } from '../support/offline';
import type { Offline } from '../support/offline';
import { projectRoot } from '../support/packaged-template';
import { startSampleEnvironment } from '../support/sample-environment';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against
 * `serverless offline`, the real database and S3 server. Screenshots go to test-output/dashboard/.
 *
 * The functions connect as a role of their own that may insert into, but not read, one table: a
 * table named `<img src=x onerror=alert(1)>` in a schema named `<script>alert(1)</script>`. An export
 * of that schema fails with an error naming both, which the page must show as text.
 *
 * The restore loads the export's tarballs into a second, empty database (the reporting team's),
 * as its owner: the functions' own role may not create schemas.
 */

const SHOTS = join(projectRoot, 'test-output', 'dashboard');
const HOSTILE_SCHEMA = '<script>alert(1)</script>';
const HOSTILE_TABLE = '<img src=x onerror=alert(1)>';

let environment: SampleEnvironment | undefined;
let target: TestDatabase | undefined;
let offline: Offline | undefined;
let browser: Browser | undefined;
let page: Page;
let role: string | undefined;
const requests: string[] = [];
const dialogs: string[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];
/** Uploads reach exportVerifier (as EventBridge would start it) only while a test needs their check. */
let forwarding = false;
/** The export of crm and idm the page starts, which the restore the page starts then loads. */
let exportRunId: string | undefined;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A login role with only what the functions need, and no SELECT on the hostile table. */
async function createFunctionsRole(env: SampleEnvironment): Promise<string> {
  const name = `${env.db.name}_fn`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE ROLE ${quote(name)} LOGIN`);
  } finally {
    await admin.end();
  }
  const sql = env.db.sql;
  await sql.unsafe(`CREATE SCHEMA ${quote(HOSTILE_SCHEMA)}`);
  await sql.unsafe(`CREATE TABLE ${quote(HOSTILE_SCHEMA)}.${quote(HOSTILE_TABLE)} (id int)`);
  // Enough rows that the export of crm takes a few seconds: long enough to watch and to be refused a second start.
  await sql.unsafe(`CREATE TABLE crm.e2e_bulk AS SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 3000000) g`);
  const schemas = ['jobs', ...DEFAULT_EXPORT_SCHEMAS].map(quote).join(', ');
  await sql.unsafe(`GRANT USAGE ON SCHEMA ${schemas}, ${quote(HOSTILE_SCHEMA)} TO ${quote(name)}`);
  await sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schemas} TO ${quote(name)}`);
  await sql.unsafe(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schemas} TO ${quote(name)}`);
  // A privilege, so information_schema lists the table, but not the one COPY needs.
  await sql.unsafe(`GRANT INSERT ON ${quote(HOSTILE_SCHEMA)}.${quote(HOSTILE_TABLE)} TO ${quote(name)}`);
  return name;
}

async function dropRole(name: string, env: SampleEnvironment | undefined): Promise<void> {
  await env?.db.sql.unsafe(`DROP OWNED BY ${quote(name)}`).catch(() => {});
  await env?.stop();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP ROLE IF EXISTS ${quote(name)}`);
  } finally {
    await admin.end();
  }
}

async function api(method: string, path: string, { key = localApiKey(), body }: { key?: string | null; body?: unknown } = {}) {
  return fetch(`${offline!.httpUrl}${path}`, {
    method,
    headers: { ...(key === null ? {} : { 'x-api-key': key }), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function startAndFinish(path: string, body?: unknown): Promise<{ id: string; status: string; error: string | null }> {
  const response = await api('POST', path, { body });
  expect(response.status, offline!.output()).toBe(204);
  const location = response.headers.get('location')!;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const run = (await (await api('GET', location)).json()) as { id: string; status: string; error: string | null };
    if (!['queued', 'running'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const jobPanel = (job: string) => page.locator(`#job-${job}`);

/** The shown run's facts, each term with its value as text. */
const runFacts = async () =>
  (await page.evaluate(`Object.fromEntries([...document.querySelectorAll('#run-detail dl.facts dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))`)) as Record<string, string>;

const RUN_ID = /([0-9a-f-]{36})/;

/** The key's id as serverless-offline reports it to the functions (API Gateway gives the real one). */
const OFFLINE_KEY_ID = 'offlineContext_apiKeyId';

interface RunAnswer {
  id: string;
  status: string;
  params: Record<string, unknown>;
  requestedBy: Record<string, unknown> | null;
  cancelledBy: Record<string, unknown> | null;
  steps: { name: string; status: string }[];
}

const getRun = async (id: string) => (await (await api('GET', `/jobs/runs/${id}`)).json()) as RunAnswer;

/** Waits until the run and each of its steps have ended; resolves with the run. */
async function runEnded(id: string): Promise<RunAnswer> {
  const ended = (status: string) => !['queued', 'running'].includes(status);
  await expect.poll(async () => {
    const run = await getRun(id);
    return ended(run.status) && run.steps.every((step) => ended(step.status));
  }, { timeout: 60_000, interval: 300 }).toBe(true);
  return getRun(id);
}

/** Answers the confirmation the page asks (checking its question and its buttons' words) with yes. */
async function confirm(question: string, yes: string, no = 'Cancel'): Promise<void> {
  await expect.poll(() => page.locator('#confirm-text').innerText(), { timeout: 15_000 }).toBe(question);
  expect([await page.locator('#confirm-yes').innerText(), await page.locator('#confirm-no').innerText()]).toEqual([yes, no]);
  await page.locator('#confirm-yes').click();
}

/** Starts a run with the job's start button, answering yes to the question it asks; resolves with the run's id. */
async function startFromPanel(job: string, question: string): Promise<string> {
  const panel = jobPanel(job);
  const message = panel.locator('.start-message');
  // The panel may still say it started an earlier run: wait for this start's answer.
  const before = await message.innerText();
  await panel.getByRole('button', { name: `Start ${job}` }).click();
  await confirm(question, 'Start');
  await expect.poll(async () => {
    const text = await message.innerText();
    return text !== before && /^Started run [0-9a-f-]{36}\.$/.test(text);
  }, { timeout: 15_000 }).toBe(true);
  return RUN_ID.exec(await message.innerText())![1]!;
}

/** A second start while a run is active: refused (409); resolves with the message's link to the active run. */
async function startAgain(job: string): Promise<Locator> {
  const panel = jobPanel(job);
  await panel.getByRole('button', { name: `Start ${job}` }).click();
  await page.locator('#confirm-yes').click();
  await expect.poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 }).toMatch(/already active/);
  return panel.locator('.start-message a.active-run-link');
}

const STEP_FIGURES = /^\d+ tables · [\d,]+ rows · [\d.]+ [KMG]?B$/;

/**
 * Live progress of the job's active run of crm and idm: a bar per chosen schema, in the configured
 * order, each with its step's own status (`names`: "crm running") and its worker's latest figures,
 * and the total. Waits until `expected` finds the steps as the test expects them.
 */
async function expectLiveProgress(job: string, expected: (names: string[], figures: string[]) => boolean): Promise<void> {
  const active = jobPanel(job).locator('.active');
  await expect
    .poll(
      async () => {
        const names = await active.locator('.steps .name').allInnerTexts();
        const figures = await active.locator('.steps .figures').allInnerTexts();
        return names.length === 2 && names[0]!.startsWith('crm ') && names[1]!.startsWith('idm ') && expected(names, figures) ? 'as expected' : JSON.stringify({ names, figures });
      },
      { timeout: 60_000, interval: 250 },
    )
    .toBe('as expected');
  expect(await active.locator('progress').count()).toBe(3); // the total and one per schema
  expect(await active.locator('progress.total').getAttribute('max')).toBe('2');
  expect(await active.locator('.total-line').innerText()).toMatch(/^[01] of 2 schemas · [\d,]+ tables · [\d,]+ rows · [\d.]+ [KMG]?B$/);
}

/** The shown run, of crm and idm, once both steps succeeded: each with its result's figures, and the totals. */
async function expectCrmAndIdmSucceeded(): Promise<void> {
  await expect.poll(() => page.locator('#run-detail .steps .name').allInnerTexts(), { timeout: 15_000 }).toEqual(['crm succeeded', 'idm succeeded']);
  for (const figures of await page.locator('#run-detail .steps .figures').allInnerTexts()) expect(figures).toMatch(/^[1-9]\d* tables · [\d,]+ rows · [\d.]+ [KMG]?B$/);
  expect(await page.locator('#run-detail progress.total').getAttribute('value')).toBe('2');
  expect(await page.locator('#run-detail .total-line').innerText()).toMatch(/^2 of 2 schemas · [1-9]\d* tables · [\d,]+ rows · [\d.]+ [KMG]?B$/);
  expect(await page.locator('#run-detail pre.error').count()).toBe(0);
}

/**
 * `statement` run in a transaction left open, holding the locks it took, until released: a reader
 * of a table (`SELECT count(*) FROM t`: ACCESS SHARE) or a lock no reader gets past.
 */
function holdInTransaction(sql: TestDatabase['sql'], statement: string): { holding: Promise<unknown>; release(): Promise<void> } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const reader = sql.begin(async (tx) => {
    await tx.unsafe(statement);
    held();
    await released;
  });
  return {
    holding: Promise.race([holding, reader]),
    async release() {
      release();
      await reader;
    },
  };
}

/** Nothing the page did raised a dialog or an error, or broke its Content-Security-Policy. */
function expectNoScriptTrouble(): void {
  expect(dialogs).toEqual([]);
  expect(pageErrors).toEqual([]);
  expect(cspViolations).toEqual([]);
}

/** Waits for a run's detail: until then the section may still show another run. */
async function runDetailShown(runId: string): Promise<void> {
  await expect.poll(() => page.locator('#run-detail-title').innerText(), { timeout: 15_000 }).toBe(`Run ${runId}`);
}

/** Follows a link to a run and waits for its detail. */
async function openRunDetail(link: Locator, runId: string): Promise<void> {
  await link.click();
  await runDetailShown(runId);
}

/** Shows a run's detail by its address, as a link to it would. */
async function showRun(runId: string): Promise<void> {
  await page.evaluate(`location.hash = '#run=${runId}'`);
  await runDetailShown(runId);
}

/** Leaves only these schemas ticked in a job's panel. */
async function tickOnly(job: string, schemas: string[]): Promise<void> {
  for (const box of await jobPanel(job).locator('input.schema-choice').all()) {
    if (schemas.includes(await box.inputValue())) await box.check();
    else await box.uncheck();
  }
}

const hasBrowser = browserAvailable();

beforeAll(async () => {
  if (!hasBrowser) return;
  await mkdir(SHOTS, { recursive: true });
  environment = await startSampleEnvironment();
  role = await createFunctionsRole(environment);
  target = await createTestDatabase('waj_e2e_dash_reporting');
  const url = new URL(environment.db.url);
  url.username = role;
  offline = await startOffline({
    DATABASE_URL: url.toString(),
    EXPORT_BUCKET: environment.bucket,
    S3_ENDPOINT: environment.s3.endpoint,
    EXPORT_SCHEMAS: [...DEFAULT_EXPORT_SCHEMAS, HOSTILE_SCHEMA].join(','),
    // Every schema step of a run must be able to start at once (docs/export.md, "One moment").
    EXPORT_CONCURRENCY: String(DEFAULT_EXPORT_SCHEMAS.length + 1),
    RESTORE_DATABASE_URL: target.url,
  });
  verifyUploadsThroughOffline(offline, environment, () => forwarding);

  // History for the page to show: a time-limited run that succeeded, an export that failed on the hostile schema.
  expect((await startAndFinish('/jobs/time-limited')).status).toBe('succeeded');
  const failed = await startAndFinish('/jobs/export', { schemas: [HOSTILE_SCHEMA] });
  expect(failed.status).toBe('failed');
  expect(failed.error).toContain(HOSTILE_SCHEMA);
  expect(failed.error).toContain(HOSTILE_TABLE);

  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  page.on('request', (request) => requests.push(request.url()));
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (/Content Security Policy|Trusted Type/i.test(message.text())) cspViolations.push(message.text());
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await offline?.stop();
  await target?.drop();
  if (role) await dropRole(role, environment);
  else await environment?.stop();
}, 60_000);

describe.skipIf(!hasBrowser)('the jobs dashboard in a browser, against serverless offline', () => {
  it('answers /jobs/dashboard with the strict headers; without the key every data route still answers 403', async () => {
    const response = await api('GET', '/jobs/dashboard', { key: null });
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const size = (await response.text()).length;
    const assets = await Promise.all(['dashboard.js', 'dashboard.css'].map(async (a) => (await (await api('GET', `/jobs/dashboard?asset=${a}`, { key: null })).text()).length));
    expect(size + assets[0]! + assets[1]!).toBeLessThan(150 * 1024);

    const someRun = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['GET', '/jobs/export/runs'],
      ['GET', '/jobs/time-limited/runs'],
      ['GET', '/jobs/restore/runs'],
      ['GET', `/jobs/runs/${someRun}`],
      ['POST', '/jobs/export'],
      ['POST', '/jobs/time-limited'],
      ['POST', '/jobs/restore'],
    ] as const) {
      expect((await api(method, path, { key: null })).status, `${method} ${path} without a key`).toBe(403);
      expect((await api(method, path, { key: 'not-the-key' })).status, `${method} ${path} with a wrong key`).toBe(403);
    }
  });

  it('asks for the key when it has none; a wrong key gets a plain message and no data', async () => {
    await page.goto(`${offline!.httpUrl}/jobs/dashboard`);
    await expect.poll(() => page.getByLabel('API key').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.locator('#jobs').innerText()).toBe('');
    await shot('1-asks-for-key');

    await page.getByLabel('API key').fill('not-the-key');
    await page.getByLabel('API key').press('Enter');
    await expect.poll(() => page.locator('#key-message').innerText(), { timeout: 15_000 }).toMatch(/refused/);
    expect(await page.locator('#jobs').innerText()).toBe('');
    expect(await page.locator('.job').count()).toBe(0);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await shot('2-wrong-key');
  });

  it('with the right key shows the three jobs, their recent runs and next schedule; the key stays in sessionStorage only', async () => {
    await page.getByLabel('API key').fill(localApiKey());
    await page.getByLabel('API key').press('Enter');
    await expect.poll(() => page.locator('.job').count(), { timeout: 15_000 }).toBe(3);
    await expect.poll(() => jobPanel('time-limited').locator('tbody tr').first().innerText(), { timeout: 15_000 }).toMatch(/succeeded/);
    await expect.poll(() => jobPanel('export').locator('tbody tr').first().innerText(), { timeout: 15_000 }).toMatch(/failed/);
    expect(await jobPanel('time-limited').locator('.job-schedule').innerText()).toMatch(/Next scheduled run: \d{4}-\d{2}-\d{2} 20:15 (GMT|BST) \(Europe\/London\)/);
    expect(await jobPanel('export').locator('.job-schedule').innerText()).toMatch(/Schedule disabled/);
    expect(await jobPanel('time-limited').locator('svg rect.bar-succeeded').count()).toBe(1);
    // The restore: started on demand, no runs yet, the configured schemas to choose from.
    await expect.poll(() => jobPanel('restore').locator('tbody tr').first().innerText(), { timeout: 15_000 }).toBe('No runs.');
    expect(await jobPanel('restore').locator('.job-schedule').innerText()).toBe('Not scheduled: started on demand');
    expect(await jobPanel('restore').locator('.schemas legend').innerText()).toBe('Schemas to restore');
    expect((await jobPanel('restore').locator('.schema-list label').allInnerTexts()).map((name) => name.trim())).toEqual([...DEFAULT_EXPORT_SCHEMAS, HOSTILE_SCHEMA]);
    expect(await jobPanel('restore').locator('.then-restore').isVisible()).toBe(false);
    expect(await jobPanel('export').locator('.then-restore').isVisible()).toBe(true);

    // A string, evaluated in the page: this project's TypeScript has no DOM types.
    const storage = await page.evaluate(`({
      session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
      local: localStorage.length,
      cookie: document.cookie,
      url: location.href,
    })`);
    expect(storage).toEqual({ session: [localApiKey()], local: 0, cookie: '', url: `${offline!.httpUrl}/jobs/dashboard` });
    expect(requests.some((url) => url.includes(localApiKey()))).toBe(false);
    await shot('3-the-jobs');
  });

  it('shows a hostile schema, table and error as text: no script runs, no request leaves the origin', async () => {
    const row = jobPanel('export').locator('tbody tr').first();
    await row.locator('summary').click();
    const error = await row.locator('pre.error').innerText();
    expect(error).toContain(HOSTILE_SCHEMA);
    expect(error).toContain(HOSTILE_TABLE);
    // The schema is offered as a choice, by its name as text.
    expect((await jobPanel('export').locator('.schema-list label').last().innerText()).trim()).toBe(HOSTILE_SCHEMA);
    await page.locator(`a[href^="#run="]`).first().click();
    await expect.poll(() => page.locator('#run-detail').isVisible(), { timeout: 15_000 }).toBe(true);
    // The run's error names the failed step and its cause; the step's bar shows its own error.
    const runError = await page.locator('#run-detail pre.run-error').innerText();
    expect(runError).toMatch(/^1 of 1 steps did not succeed\. /);
    expect(runError).toContain(`${HOSTILE_SCHEMA} failed: `);
    expect(runError).toContain(HOSTILE_TABLE);
    expect(await page.locator('#run-detail .steps .name').allInnerTexts()).toEqual([`${HOSTILE_SCHEMA} failed`]);
    expect(await page.locator('#run-detail .steps pre.step-error').innerText()).toContain(HOSTILE_TABLE);
    await shot('4-hostile-text');

    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);
    expectNoScriptTrouble();
    expect(requests.filter((url) => !url.startsWith(`${offline!.httpUrl}/`))).toEqual([]);
    await page.locator('#run-detail-close').click();
  });

  it('starts an export of two schemas from the keyboard: the progress shows, then succeeded, and the chart grows; a second start links to the active run', async () => {
    const panel = jobPanel('export');
    await tickOnly('export', ['crm', 'idm']);
    await panel.getByRole('button', { name: 'Start export' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#confirm-text').innerText(), { timeout: 15_000 }).toBe('Start an export of crm, idm?');
    // Cancel has the focus; the start button is the one before it.
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 }).toMatch(/Started run [0-9a-f-]{36}/);
    const runId = RUN_ID.exec(await panel.locator('.start-message').innerText())![1]!;
    exportRunId = runId;

    // A second start while it runs: 409, with a link to the active run.
    const link = await startAgain('export');
    expect(await link.getAttribute('href')).toBe(`#run=${runId}`);
    await openRunDetail(link, runId);
    await shot('5-second-start-409');
    await page.locator('#run-detail-close').click();

    // The steps run at once, in no set order: idm (small) may be queued, running or done by now;
    // crm (its 3 million-row table) runs for seconds, and its bar shows its figures while it does.
    await expectLiveProgress('export', (names, figures) => names[0] === 'crm running' && /^idm (queued|running|succeeded)$/.test(names[1]!) && STEP_FIGURES.test(figures[0]!));
    await shot('6-export-running');

    await expect.poll(() => panel.locator('tbody tr').first().innerText(), { timeout: 90_000 }).toMatch(/succeeded/);
    expect(await panel.locator('.active').isVisible()).toBe(false);
    expect(await panel.locator('svg rect.bar-succeeded').count()).toBe(1);
    expect(await panel.locator('svg rect.bar-failed').count()).toBe(1);
    // The ended run's detail: both steps succeeded with their results' figures, and the totals.
    await openRunDetail(panel.locator(`tbody tr[data-run="${runId}"] a[href="#run=${runId}"]`), runId);
    await expectCrmAndIdmSucceeded();
    await shot('7-export-succeeded');
    await page.locator('#run-detail-close').click();

    // Filter by status.
    await panel.locator('select.status-filter').selectOption('failed');
    await expect.poll(() => panel.locator('tbody tr').count(), { timeout: 15_000 }).toBe(1);
    expect(await panel.locator('tbody tr').first().innerText()).toMatch(/failed/);
    await panel.locator('select.status-filter').selectOption('');
    expect(requests.filter((url) => !url.startsWith(`${offline!.httpUrl}/`))).toEqual([]);
    expectNoScriptTrouble();
  }, 180_000);

  it('starts a restore of two schemas from the page: a bar per schema, then succeeded; the run names the export it restored and its moment; a second start links to the active run', async () => {
    const exported = exportRunId;
    if (!exported) throw new Error('No export to restore: the export test did not start one');
    const panel = jobPanel('restore');
    await tickOnly('restore', ['crm', 'idm']);
    // A restore loads in seconds; a reader of the reporting database's crm keeps the run from
    // putting its schemas in place (it tries again while readers hold them) for as long as the
    // test watches it: both steps loaded, the one that puts them in place running until the
    // reader lets go, with its figures.
    await target!.sql.unsafe('CREATE SCHEMA crm; CREATE TABLE crm.entity (entity_id varchar)');
    const reader = holdInTransaction(target!.sql, 'SELECT count(*) FROM crm.entity');
    let runId: string;
    try {
      await reader.holding;
      runId = await startFromPanel('restore', 'Restore crm, idm into the reporting database?');
      expect(await (await startAgain('restore')).getAttribute('href')).toBe(`#run=${runId}`);
      await expectLiveProgress('restore', (names, figures) => {
        const running = names.findIndex((name) => name.endsWith(' running'));
        // Loaded, so its figures have reached the page (a step reports them every few seconds).
        return running >= 0 && /^[1-9]/.test(figures[running]!) && STEP_FIGURES.test(figures[running]!) && names.filter((name) => name.endsWith(' succeeded')).length === 1;
      });
      await shot('8-restore-running');
    } finally {
      await reader.release();
    }

    await expect.poll(() => panel.locator('tbody tr').first().innerText(), { timeout: 150_000 }).toMatch(/succeeded/);
    expect(await panel.locator('.active').isVisible()).toBe(false);
    expect(await panel.locator('svg rect.bar-succeeded').count()).toBe(1);
    await openRunDetail(panel.locator(`tbody tr[data-run="${runId}"] a[href="#run=${runId}"]`), runId);
    await expectCrmAndIdmSucceeded();
    const facts = await runFacts();
    expect(facts).toMatchObject({ Job: 'restore', Parameters: 'schemas: crm, idm', 'Export run': exported });
    expect(facts['As of']).toMatch(/(GMT|BST)$/);
    await shot('9-restore-succeeded');

    // Its moment is the export's: the link leads to that run, which shows the same.
    const asOf = async (id: string) => ((await (await api('GET', `/jobs/runs/${id}`)).json()) as { asOf: string }).asOf;
    expect(await asOf(runId)).toBe(await asOf(exported));
    await openRunDetail(page.locator(`#run-detail dl.facts a[href="#run=${exported}"]`), exported);
    expect((await runFacts())['As of']).toBe(facts['As of']);
    await page.locator('#run-detail-close').click();

    // The reporting database holds what the export read.
    const [bulk] = await target!.sql<{ rows: number }[]>`SELECT count(*)::int AS rows FROM crm.e2e_bulk`;
    expect(bulk?.rows).toBe(3_000_000);
    const users = async (sql: TestDatabase['sql']) => (await sql<{ rows: number }[]>`SELECT count(*)::int AS rows FROM idm.users`)[0]?.rows;
    expect(await users(target!.sql)).toBe(await users(environment!.db.sql));
    expectNoScriptTrouble();
  }, 240_000);

  it('starts an export with "then restore": once its tarball is verified its restore runs, and each run links to the other', async () => {
    forwarding = true;
    try {
      const panel = jobPanel('export');
      await tickOnly('export', ['idm']);
      await panel.getByLabel('then restore into the reporting database').check();
      const runId = await startFromPanel('export', 'Start an export of idm, then restore into the reporting database?');
      await openRunDetail(panel.locator(`.start-message a[href="#run=${runId}"]`), runId);
      expect((await runFacts()).Parameters).toBe('schemas: idm · then restore');

      // The page refreshes every 30 s while nothing runs: the export may end before the verifier's check.
      await expect.poll(async () => (await runFacts()).Restore, { timeout: 90_000, interval: 500 }).toMatch(/^run [0-9a-f-]{36}$/);
      const restoreRunId = RUN_ID.exec((await runFacts()).Restore!)![1]!;
      expect(await page.locator('#run-detail .steps .name').allInnerTexts()).toEqual(['idm succeeded']);
      await openRunDetail(page.locator(`#run-detail dl.facts a[href="#run=${restoreRunId}"]`), restoreRunId);
      await expect.poll(() => page.locator('#run-detail .steps .name').allInnerTexts(), { timeout: 90_000 }).toEqual(['idm succeeded']);
      // Asked for by the export run: so its detail says, and its row, in short.
      expect(await runFacts()).toMatchObject({ Job: 'restore', Parameters: `schemas: idm · export run ${runId}`, 'Export run': runId, 'Requested by': `export run ${runId}` });
      const restoreRow = jobPanel('restore').locator(`tbody tr[data-run="${restoreRunId}"]`);
      await expect.poll(() => restoreRow.innerText(), { timeout: 15_000 }).toMatch(/succeeded/);
      expect(await restoreRow.locator('td.requested-by a').getAttribute('href')).toBe(`#run=${runId}`);
      expect(await restoreRow.locator('td.requested-by').innerText()).toBe(`export run ${runId.slice(0, 8)}`);
      await shot('10-export-then-restore');
      await page.locator('#run-detail-close').click();
      expectNoScriptTrouble();
    } finally {
      forwarding = false;
    }
  }, 240_000);

  it('shows who asked for a run: the API key’s id in the history, its address and user agent in the run’s detail, never the key', async () => {
    const panel = jobPanel('time-limited');
    const row = panel.locator('tbody tr').last(); // the run beforeAll started over HTTP, with Node's fetch
    const runId = (await row.getAttribute('data-run'))!;
    expect(await row.locator('td.requested-by').innerText()).toBe(`API key ${OFFLINE_KEY_ID}`);
    await openRunDetail(row.locator(`a[href="#run=${runId}"]`), runId);
    const { requestedBy } = await getRun(runId);
    expect(requestedBy).toMatchObject({ kind: 'http', apiKeyId: OFFLINE_KEY_ID, userAgent: 'node' });
    expect((await runFacts())['Requested by']).toBe(`API key ${OFFLINE_KEY_ID} · from ${String(requestedBy!.sourceIp)} · user agent node`);
    // Locally there are no CloudWatch logs to link to.
    expect(await page.locator('#run-detail a[target="_blank"]').count()).toBe(0);
    // The runs the page started name the browser.
    const fromPage = await getRun(exportRunId!);
    expect(fromPage.requestedBy).toMatchObject({ kind: 'http', apiKeyId: OFFLINE_KEY_ID, userAgent: expect.stringContaining('Chrome') });
    expect(await page.locator('body').innerText()).not.toContain(localApiKey());
    await shot('11-requested-by');
    await page.locator('#run-detail-close').click();
  });

  it('re-runs the failed schemas of an export from its detail: exactly the step that failed, as the start asks', async () => {
    // idm succeeds; the hostile schema, which the functions' role cannot read, fails.
    const failed = await startAndFinish('/jobs/export', { schemas: ['idm', HOSTILE_SCHEMA] });
    expect(failed.status).toBe('failed');
    await showRun(failed.id);
    expect(await page.locator('#run-detail .steps .name').allInnerTexts()).toEqual(['idm succeeded', `${HOSTILE_SCHEMA} failed`]);
    expect(await page.locator('#run-detail-cancel').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Re-run the failed schemas' }).click();
    await confirm(`Start an export of ${HOSTILE_SCHEMA}?`, 'Start');
    await expect.poll(() => page.locator('#run-detail-message').innerText(), { timeout: 15_000 }).toMatch(/^Started run [0-9a-f-]{36}\.$/);
    const rerunId = RUN_ID.exec(await page.locator('#run-detail-message').innerText())![1]!;
    expect((await getRun(rerunId)).params).toEqual({ schemas: [HOSTILE_SCHEMA] });
    await shot('12-rerun-failed-schemas');
    expect((await runEnded(rerunId)).status).toBe('failed');
    // Its detail offers the same again.
    await openRunDetail(page.locator(`#run-detail-message a[href="#run=${rerunId}"]`), rerunId);
    await expect.poll(() => page.locator('#run-detail-rerun').isVisible(), { timeout: 15_000 }).toBe(true);
    await page.locator('#run-detail-close').click();
    expectNoScriptTrouble();
  }, 180_000);

  it('cancels a running export from its panel: the run and its steps end cancelled, shown as such, and a new start is not refused; a cancel of an ended run shows its 409', async () => {
    const panel = jobPanel('export');
    await tickOnly('export', ['crm']);
    await panel.getByLabel('then restore into the reporting database').uncheck();
    // Another session holds crm's largest table, so the crm step, once running, waits on it (its
    // definition's catalog read locks the table as pg_dump's does) for as long as the test needs:
    // it cannot finish before the cancel, however fast the machine or slow the browser.
    const locker = holdInTransaction(environment!.db.sql, 'LOCK TABLE crm.e2e_bulk IN ACCESS EXCLUSIVE MODE');
    await locker.holding;
    try {
      const runId = await startFromPanel('export', 'Start an export of crm?');
      await expect.poll(() => panel.locator('.active .steps .name').allInnerTexts(), { timeout: 60_000, interval: 250 }).toEqual(['crm running']);
      // A re-run while it is active is refused with a link to it, as any start is.
      const earlier = (await api('GET', '/jobs/export/runs?status=failed&limit=1').then((r) => r.json())) as { runs: { id: string }[] };
      await showRun(earlier.runs[0]!.id);
      await page.getByRole('button', { name: 'Re-run the failed schemas' }).click();
      await page.locator('#confirm-yes').click();
      await expect.poll(() => page.locator('#run-detail-message a.active-run-link').getAttribute('href'), { timeout: 15_000 }).toBe(`#run=${runId}`);
      await page.locator('#run-detail-close').click();

      await panel.locator('.active').getByRole('button', { name: 'Cancel run' }).click();
      await confirm(`Cancel the running export run ${runId}? What it has begun is undone.`, 'Cancel run', 'Keep it');
      await expect.poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 }).toBe(`Cancelled run ${runId}.`);
      const cancelled = await runEnded(runId);
      expect(cancelled.status).toBe('cancelled');
      expect(cancelled.steps.map((step) => [step.name, step.status])).toEqual([['crm', 'cancelled']]);
      expect(cancelled.cancelledBy).toMatchObject({ kind: 'http', apiKeyId: OFFLINE_KEY_ID });

      const row = panel.locator(`tbody tr[data-run="${runId}"]`);
      await expect.poll(() => row.locator('.status').innerText(), { timeout: 15_000 }).toBe('cancelled');
      expect(await row.locator('.outcome').innerText()).toBe(`cancelled by API key ${OFFLINE_KEY_ID}`);
      expect(await panel.locator('.active').isVisible()).toBe(false);
      expect(await panel.locator(`svg rect.bar-cancelled[data-run="${runId}"]`).count()).toBe(1);
      expect(await panel.locator('.legend').innerText()).toContain('cancelled');
      await openRunDetail(row.locator(`a[href="#run=${runId}"]`), runId);
      await expect.poll(async () => (await runFacts())['Cancelled by'], { timeout: 15_000 }).toMatch(new RegExp(`^API key ${OFFLINE_KEY_ID} · from `));
      expect(await page.locator('#run-detail .steps .name').allInnerTexts()).toEqual(['crm cancelled']);
      await shot('13-export-cancelled');
      await page.locator('#run-detail-close').click();
      await panel.locator('select.status-filter').selectOption('cancelled');
      await expect.poll(() => panel.locator('tbody tr .status').allInnerTexts(), { timeout: 15_000 }).toEqual(['cancelled']);
      await panel.locator('select.status-filter').selectOption('');

      // The next start is not refused. Cancelled behind the page's back while the page asks to
      // cancel it from its detail: the answer is a 409, whose error the detail shows.
      const nextId = await startFromPanel('export', 'Start an export of crm?');
      await openRunDetail(panel.locator(`.start-message a[href="#run=${nextId}"]`), nextId);
      await page.locator('#run-detail-cancel').click();
      await expect.poll(() => page.locator('#confirm-text').innerText(), { timeout: 15_000 }).toMatch(/^Cancel the (queued|running) export run /);
      expect((await api('POST', `/jobs/runs/${nextId}/cancel`)).status).toBe(202);
      await page.locator('#confirm-yes').click();
      await expect
        .poll(() => page.locator('#run-detail-message').innerText(), { timeout: 15_000 })
        .toMatch(new RegExp(`^Not cancelled \\(HTTP 409\\): Run ${nextId} has already ended \\(cancelled\\)`));
      await expect.poll(() => page.locator('#run-detail-cancel').isVisible(), { timeout: 15_000 }).toBe(false);
      expect((await runEnded(nextId)).status).toBe('cancelled');
      // Its step ends after the run: the detail follows it (sooner than the page's 30 s idle refresh).
      await expect.poll(() => page.locator('#run-detail .steps .name').allInnerTexts(), { timeout: 10_000 }).toEqual(['crm cancelled']);
      await shot('14-cancel-409');
      await page.locator('#run-detail-close').click();
      expectNoScriptTrouble();
    } finally {
      await locker.release();
    }
  }, 180_000);

  it('pauses and resumes the time-limited schedule: who and when shown, a scheduled run while paused skipped as "schedule paused"', async () => {
    const panel = jobPanel('time-limited');
    const pause = panel.getByRole('button', { name: 'Pause schedule' });
    await pause.click();
    await confirm('Pause the time-limited schedule? Each scheduled run is skipped until it is resumed.', 'Pause schedule');
    await expect.poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 }).toBe('Schedule paused.');
    await expect.poll(() => panel.locator('.job-schedule').innerText(), { timeout: 15_000 }).toMatch(new RegExp(`^Schedule paused by API key ${OFFLINE_KEY_ID} at .+ (GMT|BST) \\(`));
    type Listing = { schedule: { paused: boolean; pausedBy?: Record<string, unknown>; pausedAt?: string }; runs: { status: string }[] };
    const listing = async () => (await (await api('GET', '/jobs/time-limited/runs?limit=1')).json()) as Listing;
    const paused = (await listing()).schedule;
    expect(paused).toMatchObject({ paused: true, pausedBy: { kind: 'http', apiKeyId: OFFLINE_KEY_ID } });
    expect(Date.parse(paused.pausedAt!)).toBeGreaterThan(Date.now() - 60_000);
    // The export's schedule is another's: still not paused.
    expect(await jobPanel('export').getByRole('button', { name: 'Pause schedule' }).isVisible()).toBe(true);

    // What EventBridge sends on the schedule, through the emulator's Lambda API.
    const fired = await fetch(`${offline!.lambdaEndpoint}/2015-03-31/functions/water-abstraction-jobs-dev-timeLimitedWorker/invocations`, {
      method: 'POST',
      body: JSON.stringify({ trigger: 'schedule' }),
    });
    expect(await fired.json()).toMatchObject({ status: 'skipped', reason: 'paused' });
    expect((await listing()).runs[0]!.status).toBe('skipped');
    await shot('15-schedule-paused');

    await panel.getByRole('button', { name: 'Resume schedule' }).click();
    await confirm('Resume the time-limited schedule?', 'Resume schedule');
    await expect.poll(() => panel.locator('.start-message').innerText(), { timeout: 15_000 }).toBe('Schedule resumed.');
    await expect
      .poll(() => panel.locator('.job-schedule').innerText(), { timeout: 15_000 })
      .toMatch(new RegExp(`^Next scheduled run: \\d{4}-\\d{2}-\\d{2} 20:15 (GMT|BST) \\(Europe/London\\); resumed by API key ${OFFLINE_KEY_ID} at `));
    expect((await listing()).schedule).toMatchObject({ paused: false, pausedBy: { kind: 'http', apiKeyId: OFFLINE_KEY_ID } });
    // The refresh after the answer shows the skipped run.
    expect(await panel.locator('tbody tr').first().locator('.outcome').innerText()).toBe(`skipped: schedule paused by API key ${OFFLINE_KEY_ID}`);
    expect(await pause.isVisible()).toBe(true);
    await shot('16-schedule-resumed');
    expectNoScriptTrouble();
  }, 60_000);

  it('is readable at a phone width, and "forget key" clears the key and the data', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => page.locator('.job').count(), { timeout: 15_000 }).toBe(3);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('17-phone');

    await page.getByRole('button', { name: 'Forget key' }).click();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(await page.locator('.job').count()).toBe(0);
    expect(await page.getByLabel('API key').isVisible()).toBe(true);
  });
});
