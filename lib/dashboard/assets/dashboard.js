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
  function runLink(id) {
    return UUID.test(String(id)) ? el('a', { href: `#run=${id}` }, String(id)) : String(id);
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
  const ENDED = ['succeeded', 'failed', 'timed_out'];

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
    add('Trigger', String(run.trigger));
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
    if (exportRuns.length > 0) add(exportRuns.length === 1 ? 'Export run' : 'Export runs', ...joined(exportRuns.map(runLink)));
    const restore = restoreAfterExport(run);
    if (restore) add('Restore', ...restore);
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
    for (const status of ['succeeded', 'failed', 'timed_out', 'running']) {
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
      name: part('.job-name'), schedule: part('.job-schedule'), form: part('.start-form'), schemas: part('.schemas'),
      schemaList: part('.schema-list'), schemasLegend: part('.schemas legend'), thenRestore: part('.then-restore'),
      thenRestoreChoice: part('.then-restore input'), start: part('.start-button'), message: part('.start-message'), active: part('.active'),
      chart: part('.chart'), filter: part('.status-filter'), rows: part('.runs tbody'),
    };
    parts.name.textContent = job;
    parts.start.textContent = `Start ${job}`;
    if (spec.schemas) parts.schemasLegend.textContent = spec.schemas.legend;
    parts.thenRestore.hidden = !spec.restoreOption;
    const state = { overview: undefined, runs: [], listed: [], active: undefined, openErrors: new Set(), schemasShown: '' };
    parts.filter.addEventListener('change', () => refresh());
    parts.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void confirmAndStart(job);
    });
    const panel = { job, spec, root, parts, state };
    panels.set(job, panel);
    return panel;
  }

  function renderSchedule(panel) {
    const { schedule } = panel.state.overview || {};
    const target = panel.parts.schedule;
    target.replaceChildren();
    if (!schedule) {
      target.append('Not scheduled: started on demand');
      return;
    }
    if (!schedule.enabled) {
      target.append(el('span', { class: 'disabled' }, 'Schedule disabled'), ` (${schedule.description}`);
      if (schedule.next) target.append(`; would next run ${schedule.next.date} ${schedule.next.time} ${schedule.next.zoneName}`);
      target.append(')');
      return;
    }
    if (schedule.next) {
      const when = el('time', { datetime: schedule.next.at }, `${schedule.next.date} ${schedule.next.time} ${schedule.next.zoneName}`);
      target.append('Next scheduled run: ', when, ` (${schedule.next.timeZone})`);
    } else {
      target.append(`Scheduled ${schedule.description}`);
    }
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
    const box = panel.parts.active;
    box.replaceChildren();
    if (!active) return;
    box.append(
      el('h3', {}, 'Active run ', statusBadge(active.status)),
      el('p', {}, active.startedAt ? `Started ${formatTime(active.startedAt)} · ${formatDuration(durationOf(active))} so far · attempt ${active.attempts} · ` : `Requested ${formatTime(active.requestedAt)}, waiting for the worker · `,
        el('a', { href: `#run=${active.id}` }, 'details')),
      renderProgress(active, overview && overview.schemas),
    );
  }

  function renderRuns(panel) {
    const { listed, openErrors } = panel.state;
    const rows = listed.map((run) => {
      // One block inside the cell, so the phone layout (a grid of label and value) keeps it whole.
      const details = el('div');
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
        el('td', { 'data-label': 'Attempts' }, String(run.attempts)),
        el('td', { 'data-label': 'Requested' }, formatTime(run.requestedAt)),
        el('td', { 'data-label': 'Took' }, formatDuration(durationOf(run))),
        el('td', { class: 'details', 'data-label': 'Details' }, details));
    });
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 6 }, 'No runs.')));
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
  // Starting a run
  // ---------------------------------------------------------------------------------------------
  function confirmStart(text) {
    const dialog = byId('confirm-dialog');
    byId('confirm-text').textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
      dialog.returnValue = '';
      dialog.showModal();
    });
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

  async function confirmAndStart(job) {
    const panel = panels.get(job);
    const { message } = panel.parts;
    const { body, question, refused } = startRequest(panel);
    if (refused) {
      message.replaceChildren(el('span', { class: 'error' }, refused));
      return;
    }
    if (!(await confirmStart(question))) {
      panel.parts.start.focus();
      return;
    }
    panel.parts.start.disabled = true;
    message.replaceChildren('Starting…');
    try {
      const response = await api(job, { method: 'POST', body });
      const answer = response.status === 204 ? {} : await readJson(response);
      if (response.status === 204) {
        const id = String(response.headers.get('Location') || '').split('/').pop();
        message.replaceChildren('Started run ', el('a', { href: `#run=${id}` }, id), '.');
      } else if (response.status === 409 && answer.activeRunId) {
        message.replaceChildren(
          el('span', { class: 'error' }, 'A run of this job is already active: '),
          el('a', { href: `#run=${answer.activeRunId}`, class: 'active-run-link' }, `see run ${answer.activeRunId}`),
        );
      } else {
        message.replaceChildren(el('span', { class: 'error' }, `Not started (HTTP ${response.status}): ${answer.error || response.statusText}`));
      }
    } catch (error) {
      if (error instanceof KeyRefused) return keyRefused();
      message.replaceChildren(el('span', { class: 'error' }, `Not started: ${error.message}`));
    } finally {
      panel.parts.start.disabled = false;
    }
    await refresh();
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
    const anyActive = [...panels.values()].some((p) => p.state.active);
    if (!document.hidden) refreshTimer = setTimeout(refresh, anyActive ? ACTIVE_REFRESH_MS : IDLE_REFRESH_MS);
  }

  async function showRunFromHash() {
    const section = byId('run-detail');
    const match = /^#run=(.+)$/.exec(location.hash);
    const id = match ? decodeURIComponent(match[1]) : '';
    if (!UUID.test(id)) {
      section.hidden = true;
      return;
    }
    const run = await getJson(`runs/${id}`);
    const jobPanel = panels.get(run.job);
    const schemas = jobPanel && jobPanel.state.overview ? jobPanel.state.overview.schemas : undefined;
    byId('run-detail-title').textContent = `Run ${run.id}`;
    byId('run-detail-body').replaceChildren(renderRunFacts(run, schemas));
    const wasHidden = section.hidden;
    section.hidden = false;
    if (wasHidden) section.focus();
  }

  // ---------------------------------------------------------------------------------------------
  // The key
  // ---------------------------------------------------------------------------------------------
  function clearData() {
    clearTimeout(refreshTimer);
    panels.clear();
    byId('jobs').replaceChildren();
    byId('run-detail').hidden = true;
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
      byId('run-detail').hidden = true;
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
