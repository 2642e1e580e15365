// The jobs dashboard. It reads and starts runs through the keyed /jobs routes with the key the
// person gives, kept in sessionStorage only. Everything a run holds (schema and table names,
// errors) is untrusted: it only ever reaches the page as text (textContent, Text nodes,
// attributes), never as HTML; the page's CSP also refuses inline script and HTML sinks.
(() => {
  'use strict';

  const KEY_STORAGE = 'jobs-dashboard-api-key';
  // The jobs shown, in order. `schemas`: the job runs one step per schema, starts on every
  // configured schema or the ones ticked, and shows a bar per step; `ask` is its confirmation.
  // `restoreOption`: its start can ask for a restore of the same schemas once it succeeded.
  const JOBS = [
    {
      name: 'export',
      schemas: { legend: 'Schemas to export', ask: (which, restore) => `Start an export of ${which}${restore ? ', then restore into the reporting database' : ''}?` },
      restoreOption: true,
    },
    { name: 'restore', schemas: { legend: 'Schemas to restore', ask: (which) => `Restore ${which} into the reporting database?` } },
    { name: 'time-limited' },
  ];
  const jobSpec = (name) => JOBS.find((job) => job.name === name) || { name };
  const ACTIVE = ['queued', 'running'];
  // A run or step that ended this way is what "Re-run the failed schemas" starts again.
  const FAILED = ['failed', 'timed_out'];
  const RUNS_SHOWN = 30;
  // While a run is active the page refreshes every few seconds; otherwise rarely, and never while
  // the tab is hidden: the callers' API key has a daily quota (serverless.yml, apiDailyQuota).
  const ACTIVE_REFRESH_MS = 3000;
  const IDLE_REFRESH_MS = 30000;
  const ZONE = 'Europe/London';
  const SVG = 'http://www.w3.org/2000/svg';
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const byId = (id) => document.getElementById(id);
  const panels = new Map(); // job -> { root, parts, state }
  let refreshTimer;
  // The run the detail section shows, as last read; the detail's actions act on it.
  let shownRun;
  let refreshing = false;
  // A refresh asked for while one is under way (a start, a filter change) runs right after it.
  let refreshAgain = false;

  class KeyRefused extends Error {}

  /** An element with text children only: strings become Text nodes, never markup. */
  function el(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      element.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) if (child !== undefined && child !== null) element.append(child);
    return element;
  }

  function svg(tag, attributes = {}, ...children) {
    const element = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
    for (const child of children) element.append(child);
    return element;
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------------
  const timeFormat = new Intl.DateTimeFormat('en-GB', {
    timeZone: ZONE, day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
  const numberFormat = new Intl.NumberFormat('en-GB');

  function formatTime(iso) {
    if (!iso) return '—';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : timeFormat.format(date);
  }

  function formatDuration(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const seconds = ms / 1000;
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function formatBytes(bytes) {
    if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '—';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
  }

  function formatCount(n) {
    return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—';
  }

  function durationOf(run) {
    if (!run.startedAt) return undefined;
    const end = run.finishedAt ? Date.parse(run.finishedAt) : Date.now();
    return end - Date.parse(run.startedAt);
  }

  function statusBadge(status) {
    return el('span', { class: `status status-${String(status).replace(/[^a-z_]/g, '')}` }, String(status));
  }

  function describeParams(run) {
    const params = run.params || {};
    return [
      Array.isArray(params.schemas) ? `schemas: ${params.schemas.join(', ')}` : '',
      params.restore === true ? 'then restore' : '',
      typeof params.exportRunId === 'string' ? `export run ${params.exportRunId}` : '',
    ].filter(Boolean).join(' · ');
  }

  /** A link to a run's detail; an id that is not a run id stays plain text. */
  function runLink(id, text = String(id)) {
    return UUID.test(String(id)) ? el('a', { href: `#run=${id}` }, text) : text;
  }

  /**
   * Who asked for a run (or cancelled it, or paused a schedule), in a few words: "API key <id>",
   * "schedule", "manual", "export run <short id>". Of the key, only ever its id.
   */
  function describeRequester(by) {
    if (!by || typeof by !== 'object') return '—';
    switch (by.kind) {
      case 'http':
        return by.apiKeyId ? `API key ${by.apiKeyId}` : 'API, no key id';
      case 'schedule':
      case 'manual':
        return by.kind;
      case 'export':
        return runLink(by.exportRunId, `export run ${String(by.exportRunId).slice(0, 8)}`);
      default:
        return String(by.kind);
    }
  }

  /** The same in full: over HTTP also the source address and the user agent. */
  function describeRequesterInFull(by) {
    if (by && by.kind === 'export') return ['export run ', runLink(by.exportRunId)];
    if (!by || by.kind !== 'http') return [describeRequester(by)];
    return [[describeRequester(by), by.sourceIp ? `from ${by.sourceIp}` : '', by.userAgent ? `user agent ${by.userAgent}` : ''].filter(Boolean).join(' · ')];
  }

  /**
   * The run's CloudWatch Logs Insights link (GET /jobs/runs/{id} gives one when deployed), opened
   * in a new tab; only an https address on the AWS console, so a run cannot send anyone elsewhere.
   */
  function logsLink(run) {
    if (typeof run.logs !== 'string' || !run.logs.startsWith('https://')) return undefined;
    let url;
    try {
      url = new URL(run.logs);
    } catch {
      return undefined;
    }
    if (url.protocol !== 'https:' || !url.hostname.endsWith('.console.aws.amazon.com')) return undefined;
    return el('a', { href: url.href, rel: 'noopener noreferrer', target: '_blank' }, 'Logs (CloudWatch Logs Insights)');
  }

  // ---------------------------------------------------------------------------------------------
  // The API, with the key from sessionStorage
  // ---------------------------------------------------------------------------------------------
  async function api(path, { method = 'GET', body } = {}) {
    const key = sessionStorage.getItem(KEY_STORAGE) ?? '';
    const headers = { 'x-api-key': key };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // Relative to this page (…/jobs/dashboard), so the stage prefix of a deployed API is kept.
    const response = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (response.status === 403 || response.status === 401) throw new KeyRefused();
    return response;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return {};
    }
  }

  async function getJson(path) {
    const response = await api(path);
    const body = await readJson(response);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}${body.error ? `: ${body.error}` : ''}`);
    return body;
  }

  // ---------------------------------------------------------------------------------------------
  // Progress of one run: a bar per schema (the export's and the restore's steps) and the total
  // ---------------------------------------------------------------------------------------------

  // A step's status once it has ended for good; its bar is full whatever the outcome.
  const ENDED = ['succeeded', ...FAILED, 'cancelled'];

  /**
   * A run's steps, one per schema, in the configured order: from `steps` as GET
   * /jobs/runs/{id} gives them (a running step with its latest `progress`, an ended one with its
   * `result`). The steps run at once, in no set order, so nothing here is inferred from a position.
   * A run the coordinator has not yet fanned out has no steps: its schemas wait, queued. An
   * export run recorded before the fan-out has no steps either, only its result's per-schema figures.
   */
  function stepsOf(run, configuredSchemas) {
    if (Array.isArray(run.steps) && run.steps.length > 0) {
      return run.steps.map((step) => {
        const figures = step.status === 'running' ? step.progress || {} : step.result || {};
        return {
          name: step.name,
          status: step.status,
          tables: figures.tablesDone ?? figures.tables,
          rows: figures.rows,
          bytes: figures.bytes,
          error: step.error,
        };
      });
    }
    if (run.result && Array.isArray(run.result.schemas)) {
      return run.result.schemas.map((o) => ({ name: o.schema, status: o.status, tables: o.tables, rows: o.rows, bytes: o.bytes, error: o.error }));
    }
    if (!ACTIVE.includes(run.status)) return [];
    const names = run.params && Array.isArray(run.params.schemas) ? run.params.schemas : configuredSchemas || [];
    return names.map((name) => ({ name, status: 'queued' }));
  }

  /** The run's totals: its `progress` (the API totals the steps), else the steps' own figures. */
  function totalsOf(run, steps) {
    const progress = run.progress || {};
    const sum = (field) => steps.reduce((total, step) => (typeof step[field] === 'number' ? (total ?? 0) + step[field] : total), undefined);
    return {
      schemasDone: typeof progress.schemasDone === 'number' ? progress.schemasDone : steps.filter((s) => s.status === 'succeeded').length,
      schemasTotal: typeof progress.schemasTotal === 'number' ? progress.schemasTotal : steps.length,
      tables: progress.tables ?? sum('tables'),
      rows: progress.rows ?? sum('rows'),
      bytes: progress.bytes ?? sum('bytes'),
    };
  }

  function stepBar(step) {
    const bar = el('progress', { max: 1, 'aria-label': `${step.name}: ${step.status}` });
    // No value: an indeterminate bar, for a step that is running.
    if (step.status !== 'running') bar.value = ENDED.includes(step.status) ? 1 : 0;
    return bar;
  }

  function renderProgress(run, configuredSchemas) {
    const box = el('div', { class: 'progress' });
    if (!jobSpec(run.job).schemas) {
      if (run.progress && typeof run.progress === 'object') {
        box.append(el('p', {}, Object.entries(run.progress).map(([k, v]) => `${k}: ${typeof v === 'number' ? formatCount(v) : String(v)}`).join(' · ')));
      }
      return box;
    }
    const steps = stepsOf(run, configuredSchemas);
    if (steps.length === 0) return box; // a run that ended before it was fanned out: its error says why
    const totals = totalsOf(run, steps);
    const total = el('progress', { class: 'total', max: Math.max(totals.schemasTotal, 1), 'aria-label': 'schemas done' });
    total.value = totals.schemasDone;
    box.append(
      el('p', { class: 'total-line' },
        el('strong', {}, `${totals.schemasDone} of ${totals.schemasTotal} schemas`),
        ` · ${formatCount(totals.tables)} tables · ${formatCount(totals.rows)} rows · ${formatBytes(totals.bytes)}`),
      total,
    );
    const list = el('div', { class: 'steps' });
    for (const step of steps) {
      const figures = [
        step.tables !== undefined ? `${formatCount(step.tables)} tables` : '',
        step.rows !== undefined ? `${formatCount(step.rows)} rows` : '',
        step.bytes !== undefined ? formatBytes(step.bytes) : '',
      ].filter(Boolean).join(' · ');
      list.append(
        el('span', { class: 'name' }, String(step.name), ' ', statusBadge(step.status)),
        stepBar(step),
        el('span', { class: 'figures' }, figures),
      );
      if (step.error) list.append(el('pre', { class: 'error step-error' }, String(step.error)), el('span'), el('span'));
    }
    box.append(list);
    return box;
  }

  function renderRunFacts(run, configuredSchemas) {
    const facts = el('dl', { class: 'facts' });
    const add = (term, ...value) => facts.append(el('dt', {}, term), el('dd', {}, ...value));
    add('Run', String(run.id));
    add('Job', String(run.job));
    add('Status', statusBadge(run.status));
    if (run.cancelledBy) add('Cancelled by', ...describeRequesterInFull(run.cancelledBy));
    add('Trigger', String(run.trigger));
    add('Requested by', ...describeRequesterInFull(run.requestedBy));
    add('Attempts', String(run.attempts));
    add('Requested', formatTime(run.requestedAt));
    add('Started', formatTime(run.startedAt));
    add('Finished', formatTime(run.finishedAt));
    add('Took', formatDuration(durationOf(run)));
    // An export run's one moment: every tarball of the run shows the database as it stood then;
    // a restore's is that of the export it restored.
    if (run.asOf) add('As of', formatTime(run.asOf));
    const params = describeParams(run);
    if (params) add('Parameters', params);
    const exportRuns = restoredExportRuns(run);
    if (exportRuns.length > 0) add(exportRuns.length === 1 ? 'Export run' : 'Export runs', ...joined(exportRuns.map((id) => runLink(id))));
    const restore = restoreAfterExport(run);
    if (restore) add('Restore', ...restore);
    const logs = logsLink(run);
    if (logs) add('Logs', logs);
    const box = el('div', {}, facts, renderProgress(run, configuredSchemas));
    if (run.error) box.append(el('h3', {}, 'Error'), el('pre', { class: 'error run-error' }, String(run.error)));
    return box;
  }

  /** The export runs whose tarballs a restore run loaded: the one it was pinned to, and each step's. */
  function restoredExportRuns(run) {
    if (run.job !== 'restore') return [];
    const ids = [run.params && run.params.exportRunId, ...(Array.isArray(run.steps) ? run.steps.map((s) => s.result && s.result.exportRunId) : [])];
    return [...new Set(ids.filter((id) => typeof id === 'string'))];
  }

  /** What became of the restore an export run asked for ({"restore": true}): its run, or why not. */
  function restoreAfterExport(run) {
    if (run.job !== 'export' || !run.params || run.params.restore !== true) return undefined;
    const restore = run.result && typeof run.result === 'object' ? run.result.restore : undefined;
    if (restore && typeof restore.runId === 'string') return ['run ', runLink(restore.runId)];
    if (restore && restore.started === false) return [el('span', { class: 'error restore-reason' }, String(restore.reason))];
    if (restore && restore.starting) return ['starting'];
    if (ACTIVE.includes(run.status)) return ['asked for: it starts once the run has succeeded and every tarball is verified'];
    if (run.status === 'succeeded') return ['waiting for the tarball verifier to check every tarball'];
    return ['not started: the run did not succeed'];
  }

  function joined(nodes, separator = ', ') {
    return nodes.flatMap((node, index) => (index === 0 ? [node] : [separator, node]));
  }

  // ---------------------------------------------------------------------------------------------
  // Duration chart of the last runs, coloured by status
  // ---------------------------------------------------------------------------------------------
  function renderChart(runs) {
    const shown = runs.filter((r) => r.startedAt).slice(0, RUNS_SHOWN).reverse();
    if (shown.length === 0) return el('p', { class: 'hint' }, 'No runs yet.');
    const width = 300;
    const height = 80;
    const slot = width / RUNS_SHOWN;
    const longest = Math.max(...shown.map((r) => durationOf(r) ?? 0), 1);
    const chart = svg('svg', {
      viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': `Durations of the last ${shown.length} runs, oldest first; the longest took ${formatDuration(longest)}`,
    });
    shown.forEach((run, index) => {
      const ms = durationOf(run) ?? 0;
      const barHeight = Math.max((ms / longest) * (height - 2), 1);
      const bar = svg('rect', {
        class: `bar bar-${String(run.status).replace(/[^a-z_]/g, '')}`,
        x: (index * slot + 1).toFixed(2), y: (height - barHeight).toFixed(2), width: Math.max(slot - 2, 1).toFixed(2), height: barHeight.toFixed(2),
        'data-run': run.id, 'data-status': run.status,
      });
      const title = svg('title');
      title.textContent = `${run.status}, ${formatDuration(ms)}, ${formatTime(run.startedAt)}`;
      bar.append(title);
      chart.append(bar);
    });
    const legend = el('ul', { class: 'legend' });
    for (const status of ['succeeded', 'failed', 'timed_out', 'cancelled', 'running']) {
      legend.append(el('li', {}, el('span', { class: `swatch swatch-${status}` }), status));
    }
    legend.append(el('li', {}, `longest ${formatDuration(longest)}`));
    return el('div', {}, chart, legend);
  }

  // ---------------------------------------------------------------------------------------------
  // A job's panel
  // ---------------------------------------------------------------------------------------------
  function createPanel(spec) {
    const job = spec.name;
    const root = byId('job-template').content.firstElementChild.cloneNode(true);
    root.id = `job-${job}`;
    root.setAttribute('aria-label', job);
    const part = (selector) => root.querySelector(selector);
    const parts = {
      name: part('.job-name'), schedule: part('.job-schedule'), pause: part('.pause-button'), form: part('.start-form'), schemas: part('.schemas'),
      schemaList: part('.schema-list'), schemasLegend: part('.schemas legend'), thenRestore: part('.then-restore'),
      thenRestoreChoice: part('.then-restore input'), start: part('.start-button'), message: part('.start-message'), active: part('.active'),
      activeTitle: part('.active-title'), activeBody: part('.active-body'), cancel: part('.cancel-button'),
      chart: part('.chart'), filter: part('.status-filter'), rows: part('.runs tbody'),
    };
    parts.name.textContent = job;
    parts.start.textContent = `Start ${job}`;
    if (spec.schemas) parts.schemasLegend.textContent = spec.schemas.legend;
    parts.thenRestore.hidden = !spec.restoreOption;
    const state = { overview: undefined, runs: [], listed: [], active: undefined, openErrors: new Set(), schemasShown: '' };
    parts.filter.addEventListener('change', () => refresh());
    const panel = { job, spec, root, parts, state };
    parts.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const request = startRequest(panel);
      if (request.refused) parts.message.replaceChildren(el('span', { class: 'error' }, request.refused));
      else void confirmAndStart(panel, request, { button: parts.start, message: parts.message });
    });
    parts.cancel.addEventListener('click', () => {
      if (state.active) void confirmAndCancel(state.active, { button: parts.cancel, message: parts.message });
    });
    parts.pause.addEventListener('click', () => void confirmAndPause(panel));
    panels.set(job, panel);
    return panel;
  }

  function renderSchedule(panel) {
    const { schedule } = panel.state.overview || {};
    const { schedule: target, pause } = panel.parts;
    target.replaceChildren(...describeSchedule(schedule));
    pause.hidden = !schedule;
    if (schedule) pause.textContent = schedule.paused ? 'Resume schedule' : 'Pause schedule';
  }

  /** The job's schedule: paused (by whom, when), disabled, or when it next runs. */
  function describeSchedule(schedule) {
    if (!schedule) return ['Not scheduled: started on demand'];
    const pausedBy = [' by ', describeRequester(schedule.pausedBy), ` at ${formatTime(schedule.pausedAt)}`];
    // Paused in the ledger: each scheduled invocation records a skipped run until it is resumed.
    if (schedule.paused) return [el('span', { class: 'paused' }, 'Schedule paused'), ...pausedBy, ` (${schedule.description}${schedule.enabled ? '' : '; disabled'})`];
    const resumed = schedule.pausedBy ? ['; resumed', ...pausedBy] : [];
    if (!schedule.enabled) {
      const next = schedule.next ? `; would next run ${schedule.next.date} ${schedule.next.time} ${schedule.next.zoneName}` : '';
      return [el('span', { class: 'disabled' }, 'Schedule disabled'), ` (${schedule.description}${next})`, ...resumed];
    }
    if (!schedule.next) return [`Scheduled ${schedule.description}`, ...resumed];
    const when = el('time', { datetime: schedule.next.at }, `${schedule.next.date} ${schedule.next.time} ${schedule.next.zoneName}`);
    return ['Next scheduled run: ', when, ` (${schedule.next.timeZone})`, ...resumed];
  }

  function renderSchemaChoice(panel) {
    const schemas = panel.state.overview && Array.isArray(panel.state.overview.schemas) ? panel.state.overview.schemas : undefined;
    if (!schemas) return;
    const signature = JSON.stringify(schemas);
    if (panel.state.schemasShown === signature) return; // keep what the person ticked
    panel.state.schemasShown = signature;
    panel.parts.schemas.hidden = false;
    panel.parts.schemaList.replaceChildren(
      ...schemas.map((schema, index) => {
        const id = `${panel.job}-schema-${index}`;
        return el('label', { for: id }, el('input', { type: 'checkbox', id, value: schema, checked: true, class: 'schema-choice' }), ' ', String(schema));
      }),
    );
  }

  function chosenSchemas(panel) {
    const boxes = [...panel.parts.schemaList.querySelectorAll('input.schema-choice')];
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    return { all: chosen.length === boxes.length, chosen };
  }

  function renderActive(panel) {
    const { active, overview } = panel.state;
    const { parts } = panel;
    parts.active.hidden = !active;
    parts.activeBody.replaceChildren();
    if (!active) return;
    parts.activeTitle.replaceChildren('Active run ', statusBadge(active.status));
    parts.activeBody.append(
      el('p', {}, active.startedAt ? `Started ${formatTime(active.startedAt)} · ${formatDuration(durationOf(active))} so far · attempt ${active.attempts} · ` : `Requested ${formatTime(active.requestedAt)}, waiting for the worker · `,
        el('a', { href: `#run=${active.id}` }, 'details')),
      renderProgress(active, overview && overview.schemas),
    );
  }

  /** Why a run did not run, or who stopped it, in a few words for the history; else nothing. */
  function outcomeNote(run) {
    const result = run.result && typeof run.result === 'object' ? run.result : {};
    if (run.status === 'skipped' && result.reason === 'paused') {
      return ['skipped: schedule paused', ...(result.pause && result.pause.by ? [' by ', describeRequester(result.pause.by)] : [])];
    }
    if (run.status === 'skipped' && typeof result.activeRunId === 'string') return ['skipped: ', runLink(result.activeRunId, 'another run'), ' was active'];
    if (run.status === 'cancelled') return ['cancelled by ', describeRequester(run.cancelledBy)];
    return undefined;
  }

  function renderRuns(panel) {
    const { listed, openErrors } = panel.state;
    const rows = listed.map((run) => {
      // One block inside the cell, so the phone layout (a grid of label and value) keeps it whole.
      const details = el('div');
      const note = outcomeNote(run);
      if (note) details.append(el('div', { class: 'outcome' }, ...note));
      const params = describeParams(run);
      if (params) details.append(el('div', {}, params));
      if (run.error) {
        const more = el('details', { 'data-run': run.id }, el('summary', {}, 'Error'), el('pre', { class: 'error' }, String(run.error)));
        more.open = openErrors.has(run.id);
        more.addEventListener('toggle', () => (more.open ? openErrors.add(run.id) : openErrors.delete(run.id)));
        details.append(more);
      }
      details.append(el('a', { href: `#run=${run.id}`, 'aria-label': `Run ${run.id}` }, 'run'));
      // data-label: the column's name, shown beside each cell when a phone's width stacks them.
      return el('tr', { 'data-run': run.id },
        el('td', { 'data-label': 'Status' }, statusBadge(run.status)),
        el('td', { 'data-label': 'Trigger' }, String(run.trigger)),
        el('td', { class: 'requested-by', 'data-label': 'Requested by' }, describeRequester(run.requestedBy)),
        el('td', { 'data-label': 'Attempts' }, String(run.attempts)),
        el('td', { 'data-label': 'Requested' }, formatTime(run.requestedAt)),
        el('td', { 'data-label': 'Took' }, formatDuration(durationOf(run))),
        el('td', { class: 'details', 'data-label': 'Details' }, details));
    });
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7 }, 'No runs.')));
    panel.parts.rows.replaceChildren(...rows);
  }

  function renderPanel(panel) {
    // "Already active" is about a run that has since ended: drop it rather than mislead.
    if (!panel.state.active && panel.parts.message.querySelector('.active-run-link')) panel.parts.message.replaceChildren();
    renderSchedule(panel);
    renderSchemaChoice(panel);
    renderActive(panel);
    panel.parts.chart.replaceChildren(renderChart(panel.state.runs));
    renderRuns(panel);
  }

  // ---------------------------------------------------------------------------------------------
  // Acting: start, re-run, cancel, pause or resume; each asks first, then refreshes
  // ---------------------------------------------------------------------------------------------
  function confirmAction(text, { yes = 'Start', no = 'Cancel' } = {}) {
    const dialog = byId('confirm-dialog');
    byId('confirm-text').textContent = text;
    byId('confirm-yes').textContent = yes;
    byId('confirm-no').textContent = no;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
      dialog.returnValue = '';
      dialog.showModal();
    });
  }

  /**
   * Asks `question`; once the person agrees, sends one request with `button` disabled and shows in
   * `message` what `answered` makes of the answer, or (when it makes nothing of it) the API's
   * error after `refusal`, as text. Then refreshes the page.
   */
  async function confirmAndSend({ question, labels, button, message, pending, refusal, path, method, body, answered }) {
    if (!(await confirmAction(question, labels))) {
      button.focus();
      return;
    }
    button.disabled = true;
    message.replaceChildren(pending);
    try {
      const response = await api(path, { method, body });
      const answer = response.status === 204 ? {} : await readJson(response);
      const shown = answered(response, answer) || [el('span', { class: 'error' }, `${refusal} (HTTP ${response.status}): ${answer.error || response.statusText}`)];
      message.replaceChildren(...shown);
    } catch (error) {
      if (error instanceof KeyRefused) return keyRefused();
      message.replaceChildren(el('span', { class: 'error' }, `${refusal}: ${error.message}`));
    } finally {
      button.disabled = false;
    }
    await refresh();
  }

  /** The start's request body and its confirmation, from what the panel has ticked; or why not. */
  function startRequest(panel) {
    const { spec, parts } = panel;
    if (!spec.schemas) return { question: `Start a ${spec.name} run?` };
    const { all, chosen } = chosenSchemas(panel);
    if (chosen.length === 0) return { refused: 'Tick at least one schema.' };
    const restore = Boolean(spec.restoreOption && parts.thenRestoreChoice.checked);
    const params = { ...(all ? {} : { schemas: chosen }), ...(restore ? { restore: true } : {}) };
    return {
      body: Object.keys(params).length > 0 ? JSON.stringify(params) : undefined,
      question: spec.schemas.ask(all ? 'all schemas' : chosen.join(', '), restore),
    };
  }

  /** The schemas whose steps failed or timed out in `run`: what "Re-run the failed schemas" starts again. */
  function failedSchemas(run) {
    if (!jobSpec(run.job).schemas || !FAILED.includes(run.status)) return [];
    return stepsOf(run).filter((step) => FAILED.includes(step.status)).map((step) => String(step.name));
  }

  /** The re-run's request: exactly the failed schemas, asked as the job's own start asks. */
  function rerunRequest(run) {
    const schemas = failedSchemas(run);
    return { body: JSON.stringify({ schemas }), question: jobSpec(run.job).schemas.ask(schemas.join(', '), false) };
  }

  /** Starts a run of the panel's job; `place`: the button asked from and where its answer shows. 409 links to the active run. */
  function confirmAndStart(panel, { body, question }, { button, message }) {
    return confirmAndSend({
      question, button, message, body, pending: 'Starting…', refusal: 'Not started', path: panel.job, method: 'POST',
      answered: (response, answer) => {
        if (response.status === 204) {
          const id = String(response.headers.get('Location') || '').split('/').pop();
          return ['Started run ', el('a', { href: `#run=${id}` }, id), '.'];
        }
        if (response.status === 409 && answer.activeRunId) {
          return [
            el('span', { class: 'error' }, 'A run of this job is already active: '),
            el('a', { href: `#run=${answer.activeRunId}`, class: 'active-run-link' }, `see run ${answer.activeRunId}`),
          ];
        }
        return undefined;
      },
    });
  }

  /** Cancels a queued or running run; one that has ended (409) or is unknown (404) says so. */
  function confirmAndCancel(run, { button, message }) {
    return confirmAndSend({
      question: `Cancel the ${run.status} ${run.job} run ${run.id}? What it has begun is undone.`,
      labels: { yes: 'Cancel run', no: 'Keep it' },
      button, message, pending: 'Cancelling…', refusal: 'Not cancelled', path: `runs/${run.id}/cancel`, method: 'POST',
      answered: (response) => (response.status === 202 ? ['Cancelled run ', runLink(run.id), '.'] : undefined),
    });
  }

  /** Pauses the job's schedule, or resumes it, whichever it is not. */
  function confirmAndPause(panel) {
    const { job, parts, state } = panel;
    const schedule = state.overview && state.overview.schedule;
    if (!schedule) return undefined;
    const paused = !schedule.paused;
    return confirmAndSend({
      question: paused ? `Pause the ${job} schedule? Each scheduled run is skipped until it is resumed.` : `Resume the ${job} schedule?`,
      labels: { yes: paused ? 'Pause schedule' : 'Resume schedule' },
      button: parts.pause, message: parts.message, pending: paused ? 'Pausing…' : 'Resuming…', refusal: paused ? 'Not paused' : 'Not resumed',
      path: `${job}/schedule`, method: 'PUT', body: JSON.stringify({ paused }),
      answered: (response) => (response.status === 200 ? [paused ? 'Schedule paused.' : 'Schedule resumed.'] : undefined),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Loading and refreshing
  // ---------------------------------------------------------------------------------------------
  async function loadJob(panel) {
    const listing = await getJson(`${panel.job}/runs?limit=${RUNS_SHOWN}`);
    const filter = panel.parts.filter.value;
    const listed = filter ? (await getJson(`${panel.job}/runs?limit=${RUNS_SHOWN}&status=${encodeURIComponent(filter)}`)).runs : listing.runs;
    const activeSummary = listing.runs.find((r) => ACTIVE.includes(r.status));
    // The run itself carries the most detail (per-schema steps, when the API gives them).
    const active = activeSummary ? await getJson(`runs/${activeSummary.id}`) : undefined;
    Object.assign(panel.state, { overview: listing, runs: listing.runs, listed, active });
    renderPanel(panel);
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    if (!sessionStorage.getItem(KEY_STORAGE)) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    refreshAgain = false;
    try {
      for (const spec of JOBS) if (!panels.has(spec.name)) byId('jobs').append(createPanel(spec).root);
      await Promise.all([...panels.values()].map(loadJob));
      await showRunFromHash();
      byId('page-status').textContent = `Updated ${formatTime(new Date().toISOString())}`;
      byId('forget-key').hidden = false;
    } catch (error) {
      if (error instanceof KeyRefused) {
        refreshing = false;
        refreshAgain = false;
        return keyRefused();
      }
      byId('page-status').textContent = `Could not refresh: ${error.message}`;
    } finally {
      refreshing = false;
    }
    if (refreshAgain) return refresh();
    // A cancelled run's running steps end within seconds of it: its detail follows them too.
    const stepsUnderWay = Boolean(shownRun && Array.isArray(shownRun.steps) && shownRun.steps.some((step) => ACTIVE.includes(step.status)));
    const following = stepsUnderWay || [...panels.values()].some((p) => p.state.active);
    if (!document.hidden) refreshTimer = setTimeout(refresh, following ? ACTIVE_REFRESH_MS : IDLE_REFRESH_MS);
  }

  async function showRunFromHash() {
    const section = byId('run-detail');
    const match = /^#run=(.+)$/.exec(location.hash);
    const id = match ? decodeURIComponent(match[1]) : '';
    if (!UUID.test(id)) {
      hideRunDetail();
      return;
    }
    const run = await getJson(`runs/${id}`);
    const jobPanel = panels.get(run.job);
    const schemas = jobPanel && jobPanel.state.overview ? jobPanel.state.overview.schemas : undefined;
    // What an action answered is about the run it was taken on.
    if (!shownRun || shownRun.id !== run.id) byId('run-detail-message').replaceChildren();
    shownRun = run;
    byId('run-detail-title').textContent = `Run ${run.id}`;
    renderRunActions(run);
    byId('run-detail-body').replaceChildren(renderRunFacts(run, schemas));
    const wasHidden = section.hidden;
    section.hidden = false;
    if (wasHidden) section.focus();
  }

  /** What can be done to the shown run: cancel it while it is active; re-run what failed of it. */
  function renderRunActions(run) {
    const cancel = byId('run-detail-cancel');
    const rerun = byId('run-detail-rerun');
    cancel.hidden = !ACTIVE.includes(run.status);
    rerun.hidden = failedSchemas(run).length === 0;
    byId('run-detail-actions').hidden = cancel.hidden && rerun.hidden;
  }

  function hideRunDetail() {
    byId('run-detail').hidden = true;
    byId('run-detail-message').replaceChildren();
    shownRun = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // The key
  // ---------------------------------------------------------------------------------------------
  function clearData() {
    clearTimeout(refreshTimer);
    panels.clear();
    byId('jobs').replaceChildren();
    hideRunDetail();
    byId('run-detail-body').replaceChildren();
    byId('page-status').textContent = '';
    byId('forget-key').hidden = true;
  }

  function askForKey(message) {
    clearData();
    byId('key-form').hidden = false;
    byId('key-message').textContent = message || '';
    byId('key-input').value = '';
    byId('key-input').focus();
  }

  function keyRefused() {
    sessionStorage.removeItem(KEY_STORAGE);
    askForKey('That API key was refused (HTTP 403). Check it and try again.');
  }

  function start() {
    byId('key-form').hidden = true;
    void refresh();
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = byId('key-input').value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      byId('key-input').value = '';
      byId('key-message').textContent = '';
      start();
    });
    byId('forget-key').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORAGE);
      askForKey('Key forgotten.');
    });
    byId('run-detail-close').addEventListener('click', (event) => {
      event.preventDefault();
      history.replaceState(null, '', location.pathname + location.search);
      hideRunDetail();
    });
    // The detail's actions answer in its own message line, which its refresh leaves alone.
    const detailPlace = (buttonId) => ({ button: byId(buttonId), message: byId('run-detail-message') });
    byId('run-detail-cancel').addEventListener('click', () => {
      if (shownRun) void confirmAndCancel(shownRun, detailPlace('run-detail-cancel'));
    });
    byId('run-detail-rerun').addEventListener('click', () => {
      const panel = shownRun && panels.get(shownRun.job);
      if (panel) void confirmAndStart(panel, rerunRequest(shownRun), detailPlace('run-detail-rerun'));
    });
    window.addEventListener('hashchange', () => void showRunFromHash().catch((error) => {
      if (error instanceof KeyRefused) keyRefused();
      else byId('page-status').textContent = `Could not load the run: ${error.message}`;
    }));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) void refresh();
    });
    if (sessionStorage.getItem(KEY_STORAGE)) start();
    else askForKey();
  });
})();
