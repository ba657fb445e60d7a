const STYLE = `
  [hidden] { display: none !important; }
  :root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
  main { max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; }
  h1 { font-size: 1.6rem; margin: 0.5rem 0; } h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
  .hint { color: #4a5360; font-size: 0.9rem; }
  form.row { display: flex; gap: 0.5rem; margin: 0.75rem 0; flex-wrap: wrap; }
  input, button, textarea { font: inherit; padding: 0.45rem 0.6rem; border-radius: 6px; border: 1px solid #aab2bd; }
  input[type=text], textarea { flex: 1; min-width: 12rem; }
  button { background: #1f5fbf; color: #fff; border-color: #1f5fbf; cursor: pointer; }
  button.secondary { background: #fff; color: #1f5fbf; }
  button:disabled, button[aria-disabled=true] { background: #c9ced6; border-color: #c9ced6; color: #3d4550; cursor: not-allowed; }
  ul.notes { list-style: none; padding: 0; } ul.notes li { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 0.6rem 0.8rem; margin: 0.4rem 0; display: flex; gap: 0.5rem; align-items: center; }
  ul.notes li .text { flex: 1; } ul.notes li .meta { color: #5b6470; font-size: 0.8rem; }
  ul.pending li { background: #fff8e1; border-color: #e0c46c; }
  #flash { min-height: 1.3em; }
  dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: 0.5rem; }
  dl.figures div { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 0.5rem 0.7rem; }
  dl.figures dt { font-size: 0.75rem; color: #5b6470; text-transform: uppercase; } dl.figures dd { margin: 0; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; width: 100%; font-size: 0.85rem; background: #fff; } td, th { border: 1px solid #dde1e6; padding: 0.3rem 0.5rem; text-align: left; }
`;

/** The notes board: the banner on top, write controls that the banner disables during a window. */
export const notesPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Notes board · quiesce demo</title>
<style>${STYLE}</style>
<script src="/assets/quiesce-banner.js" defer></script>
<script src="/assets/quiesce-client.js" defer></script>
</head>
<body>
<quiesce-banner src="/quiesce" disable-writes></quiesce-banner>
<main>
  <h1>Notes board</h1>
  <p class="hint">A shared board. During a maintenance window adding a note still works — it is
  kept as a write intent and appears once the window ends — while deleting and pinning are paused.
  Operators: <a href="/admin">admin page</a>.</p>
  <form id="add" class="row">
    <input type="text" id="text" name="text" required maxlength="500" placeholder="Write a note…" aria-label="Note text" autocomplete="off">
    <button type="submit" id="add-button">Add note</button>
  </form>
  <p id="flash" role="status" aria-live="polite"></p>
  <ul id="pending" class="notes pending" aria-label="Queued notes"></ul>
  <ul id="notes" class="notes" aria-label="Notes"></ul>
</main>
<script type="module">
const $ = (s) => document.querySelector(s);
const pending = new Map();
const flash = (t) => { $('#flash').textContent = t; };
// Writes go through @quiesce/client: a write refused during a window waits it out (Retry-After,
// within a 30 s budget) and lands once; one past the budget fails at once with the window's message.
const write = QuiesceClient.withQuiesceRetry(fetch, {
  budgetMs: 30_000,
  onRetry: (e) => { if (e.refusal) flash(e.refusal.message + ' — saving when writes resume…'); },
});

function button(label, action, id) {
  const b = document.createElement('button');
  b.type = 'button'; b.className = 'secondary'; b.textContent = label;
  b.dataset.action = action; b.dataset.id = id;
  b.setAttribute('data-quiesce-write', '');
  return b;
}

function render(notes) {
  const ul = $('#notes');
  ul.replaceChildren(...notes.map((n) => {
    const li = document.createElement('li');
    li.dataset.noteId = n.id;
    const text = document.createElement('span'); text.className = 'text'; text.textContent = (n.pinned ? '📌 ' : '') + n.text;
    const meta = document.createElement('span'); meta.className = 'meta'; meta.textContent = n.source === 'replay' ? 'applied after the window' : n.source;
    li.append(text, meta, button(n.pinned ? 'Unpin' : 'Pin', n.pinned ? 'unpin' : 'pin', n.id), button('Delete', 'delete', n.id));
    return li;
  }));
  document.body.dataset.notes = String(notes.length);
}

function renderPending() {
  $('#pending').replaceChildren(...[...pending.entries()].map(([id, p]) => {
    const li = document.createElement('li');
    li.dataset.intentId = id;
    li.textContent = p.text + ' — queued, will appear after the maintenance window';
    return li;
  }));
}

async function load() {
  const r = await fetch('/api/notes');
  if (r.ok) render(await r.json());
}

async function problem(r, fallback) {
  const p = await r.json().catch(() => ({}));
  flash(p.detail || p.message || fallback);
}

$('#add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('#text').value.trim();
  if (!text) return;
  const r = await write('/api/notes', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
    body: JSON.stringify({ text }),
  }).catch((error) => { flash(error.message); return null; });
  if (!r) return;
  if (r.status === 201) { $('#text').value = ''; flash('Note added.'); await load(); }
  else if (r.status === 202) {
    const b = await r.json();
    pending.set(b.intentId, { text, statusUrl: b.statusUrl });
    $('#text').value = '';
    flash('Writes are paused: your note is queued and will appear after the maintenance window.');
    renderPending();
  } else await problem(r, 'Could not add the note.');
});

$('#notes').addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-action]');
  if (!b || b.disabled) return;
  const { action, id } = b.dataset;
  const r = await (action === 'delete'
    ? write('/api/notes/' + id, { method: 'DELETE' })
    : write('/nest/notes/' + id + '/' + action, { method: 'POST' })
  ).catch((error) => { flash(error.message); return null; });
  if (r && !r.ok) await problem(r, 'That did not work.');
  await load();
});

async function checkPending() {
  for (const [id, p] of pending) {
    const r = await fetch(p.statusUrl).catch(() => null);
    const i = r && r.ok ? await r.json() : null;
    if (i && i.status === 'applied') { pending.delete(id); renderPending(); flash('Your queued note was applied.'); await load(); }
  }
}
setInterval(checkPending, 1000);
setInterval(load, 5000);
document.addEventListener('quiesce-state', () => load());
load();
</script>
</body>
</html>
`;

/**
 * The operator's page: the admin API behind a Bearer token, figures refreshed every second.
 * Escalations come from `GET /admin/escalation`: core's `escalationRows` of the window's record.
 */
export const adminPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Admin · quiesce demo</title>
<meta name="robots" content="noindex">
<link rel="icon" href="data:,"><!-- no /favicon.ico request: it would count as a read of the window -->
<style>${STYLE} main { max-width: 64rem; }</style>
<script src="/assets/quiesce-banner.js" defer></script>
</head>
<body>
<quiesce-banner src="/quiesce"></quiesce-banner>
<main>
  <h1>quiesce admin</h1>
  <form id="login" class="row" hidden>
    <input type="text" id="token" placeholder="Admin token (printed by the demo at start)" aria-label="Admin token" autocomplete="off">
    <button type="submit">Open</button>
  </form>
  <p id="flash" role="status" aria-live="polite"></p>
  <section id="panel" hidden>
    <dl class="figures">
      <div><dt>Phase</dt><dd data-figure="phase">–</dd></div>
      <div><dt>Mode</dt><dd data-figure="mode">–</dd></div>
      <div><dt>Instances acked</dt><dd data-figure="instances">–</dd></div>
      <div><dt>In flight</dt><dd data-figure="inflight">–</dd></div>
      <div><dt>Refused</dt><dd data-figure="refused">0</dd></div>
      <div><dt>Queued</dt><dd data-figure="queued">0</dd></div>
      <div><dt>Dropped</dt><dd data-figure="dropped">0</dd></div>
      <div><dt>Queue depth</dt><dd data-figure="queue-depth">–</dd></div>
      <div><dt>Replayed</dt><dd data-figure="applied">–</dd></div>
      <div><dt>Backfill</dt><dd data-figure="backfill">–</dd></div>
      <div><dt>Reads p95 before</dt><dd data-figure="read-p95-baseline">–</dd></div>
      <div><dt>Reads p95 window</dt><dd data-figure="read-p95-window">–</dd></div>
      <div><dt>Extensions</dt><dd data-figure="extensions">–</dd></div>
    </dl>
    <p data-figure="window" class="hint"></p>
    <p data-figure="read-health" class="hint"></p>
    <p data-figure="write-audit" class="hint"></p>
    <p data-figure="record-reads" class="hint"></p>
    <h2>Escalations</h2>
    <p data-figure="escalation-policy" class="hint"></p>
    <table><thead><tr><th>at</th><th>outcome</th><th>evidence</th><th>extension</th><th>instance</th></tr></thead><tbody id="escalations"></tbody></table>
    <p data-figure="rollback" class="hint"></p>
    <table><thead><tr><th>read signal</th><th>before the window</th><th>during it</th><th>trend</th></tr></thead><tbody id="signals"></tbody></table>
    <h2>Begin or schedule a window</h2>
    <form id="begin" class="row">
      <input type="text" name="reason" required placeholder="Reason (audit)" aria-label="Reason">
      <input type="text" name="message" required placeholder="Message users see" aria-label="Message">
      <input type="text" name="rollbackPlan" placeholder="Rollback plan (optional)" aria-label="Rollback plan">
      <label>for <input type="number" name="minutes" min="1" max="10080" value="30" aria-label="Duration in minutes" style="width:6rem"> minutes</label>
      <label>starting <input type="datetime-local" name="startsAt" aria-label="Starts at (empty: now)"> (empty: now)</label>
      <button type="submit">Begin</button>
    </form>
    <p class="hint">The message is a sentence or two without clock times: the banner shows the exact start and end in each reader's zone and UTC, and an extension would make a time in the text wrong.</p>
    <form id="extend" class="row">
      <label>by <input type="number" name="minutes" min="1" max="10080" value="15" aria-label="Extend by minutes" style="width:6rem"> minutes</label>
      <button type="submit" class="secondary">Extend</button>
      <button type="button" id="end">End window…</button>
    </form>
    <div id="end-confirm" class="row" role="alertdialog" aria-labelledby="end-question" hidden>
      <p id="end-question">End the window now? Writes come back on at once on every instance; queued writes replay after the soak.</p>
      <button type="button" id="end-yes">Yes, end it</button>
      <button type="button" id="end-no" class="secondary">Keep it</button>
    </div>
    <h2>Instances</h2>
    <table><thead><tr><th>id</th><th>live</th><th>acked</th><th>in flight</th><th>oldest write</th></tr></thead><tbody id="instances"></tbody></table>
    <h2>Audit trail</h2>
    <table><thead><tr><th>at</th><th>actor</th><th>action</th><th>from → to</th><th>v</th><th>reason</th></tr></thead><tbody id="audit"></tbody></table>
  </section>
</main>
<script type="module">
const $ = (s) => document.querySelector(s);
// A message ends as a sentence, so it never runs into the banner's next one.
const sentence = (m) => { const t = String(m || '').trim(); return !t || /[.!?…]["'”’)]*$/.test(t) ? t : t + '.'; };
const flash = (t) => { $('#flash').textContent = t; };
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { sessionStorage.setItem('quiesce-token', fromHash); history.replaceState(null, '', location.pathname); }
let token = sessionStorage.getItem('quiesce-token');

async function api(method, path, body, base = '/quiesce/admin') {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 || r.status === 403) { sessionStorage.removeItem('quiesce-token'); token = null; show(); }
  if (!r.ok) throw new Error(data.detail || r.statusText);
  return data;
}

const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
const ms = (v) => (v == null ? '–' : v.toFixed(1) + ' ms');
const set = (name, v) => { document.querySelector('[data-figure="' + name + '"]').textContent = v; };
const cell = (tr, v) => { const td = document.createElement('td'); td.textContent = v; tr.append(td); };

// The reads every instance added to the window's record (readHealth@<id>: histograms whose bucket i
// holds durations up to 0.1 ms × 2^(i/4)), added up; percentiles are bucket upper bounds.
function recordReads(w) {
  const parts = Object.keys(w.report).filter((k) => k.startsWith('readHealth@')).map((k) => w.report[k]);
  if (parts.length === 0) return w.phase === 'thawing' || w.phase === 'backfilling' || w.phase === 'closed' ? 'Recorded reads: none.' : '';
  const stats = (key) => {
    const b = new Map(); let n = 0; let e = 0;
    for (const p of parts) { n += p[key].count; e += p[key].errors; for (const [i, c] of p[key].buckets) b.set(i, (b.get(i) || 0) + c); }
    const sorted = [...b].sort((x, y) => x[0] - y[0]);
    const q = (f) => { let seen = 0; for (const [i, c] of sorted) { seen += c; if (seen >= Math.max(1, Math.ceil(f * n))) return 0.1 * 2 ** (i / 4); } return null; };
    return n === 0 ? '0 reads' : n + ' reads, p50 ' + ms(q(0.5)) + ', p95 ' + ms(q(0.95)) + ', p99 ' + ms(q(0.99)) + ', errors ' + (100 * e / n).toFixed(1) + '%';
  };
  const bf = (w.checklist && w.checklist.backfill) || w.report.backfill;
  return 'Recorded reads from ' + parts.length + ' instance' + (parts.length === 1 ? '' : 's') + ' — during: ' + stats('during') + '; before: ' + stats('before') + '.' +
    (bf ? ' Backfill: ' + bf.applied + ' applied, ' + bf.failed + ' failed (' + bf.done + '/' + bf.total + ').' : '');
}

const num = (v) => (v == null ? '–' : Number(v.toPrecision(3)).toString());
const stats = (x) => (x.count === 0 ? 'no reads' : x.count + ' reads, mean ' + num(x.mean) + ', p95 ' + num(x.p95) + ', max ' + num(x.max));

// #18: the window's escalations as core's escalationRows(window) gives them (GET /admin/escalation):
// the rows \`quiesce status\` prints. Every figure, the limit included, is from the window's record
// (report.escalation); before the first escalation, the limit is the demo engine's own policy
// (engine.options.escalation). The page only lays them out.
function renderEscalations(w, view, readHealth) {
  set('extensions', view ? view.extensionsFigure : w ? '0' : '–');
  set('escalation-policy', view && view.recorded && view.policy ? 'As recorded: ' + view.policy + '.'
    : w ? 'No escalation recorded in this window.' + (view && view.policy ? ' Policy: ' + view.policy + '.' : '') : '');
  $('#escalations').replaceChildren(...(view ? view.rows : []).map((r) => {
    const tr = document.createElement('tr');
    [r.at, r.outcome].forEach((v) => cell(tr, v));
    // One line per rule that fired; its numbers ride along as data attributes.
    const evidence = document.createElement('td');
    evidence.append(...r.evidence.map((line, i) => {
      const div = document.createElement('div');
      div.textContent = line;
      const f = r.findings[i];
      if (f) Object.assign(div.dataset, { metric: f.metric, kind: f.kind, baseline: String(f.baseline), during: String(f.during), limit: String(f.limit) });
      return div;
    }));
    tr.append(evidence);
    [r.extension, r.instanceId].forEach((v) => cell(tr, v));
    tr.dataset.outcome = r.outcome;
    return tr;
  }));
  set('rollback', view && view.rollback ? 'Rollback hook: ' + view.rollback : view && view.rows.length ? 'Rollback hook: not run.' : '');
  $('#signals').replaceChildren(...Object.entries(readHealth.signals || {}).map(([name, sig]) => {
    const tr = document.createElement('tr');
    tr.dataset.signal = name;
    [name, stats(sig.baseline), stats(sig.window), sig.trend == null ? '–' : num(sig.trend) + ' per read'].forEach((v) => cell(tr, v));
    return tr;
  }));
}

async function refresh() {
  if (!token) return;
  try {
    const [s, a, e] = await Promise.all([
      api('GET', '/status'), api('GET', '/audit?limit=25'), api('GET', '/admin/escalation', undefined, ''),
    ]);
    const w = s.state.window;
    const fv = (w && w.freezeVersion) || s.state.version;
    const live = s.instances.filter((i) => i.live);
    set('phase', s.phase || 'none');
    set('mode', s.state.mode);
    set('instances', live.filter((i) => i.ackedVersion >= fv).length + '/' + live.length);
    set('inflight', String(live.reduce((n, i) => n + i.inFlight, 0)));
    set('refused', String(sum(s.counters.refused)));
    set('queued', String(sum(s.counters.queued)));
    set('dropped', String(sum(s.counters.dropped)));
    set('queue-depth', s.queue ? String(s.queue.depth) : '–');
    set('applied', s.queue ? String(s.queue.applied) : '–');
    set('backfill', s.backfill ? s.backfill.done + '/' + s.backfill.total : '–');
    set('read-p95-baseline', ms(s.readHealth.baseline.p95Ms));
    set('read-p95-window', ms(s.readHealth.window.p95Ms));
    set('read-health', s.readHealth.healthy ? 'Reads are healthy (' + s.readHealth.window.count + ' during the window, ' + s.readHealth.baseline.count + ' before).' : 'Reads degraded: ' + s.readHealth.reasons.join('; '));
    set('window', w ? w.id + ' · ' + w.reason + ' · “' + w.message + '” · ' + (w.endedAt ? 'ended ' + w.endedAt + (w.endsAt ? ' (planned ' + w.endsAt + ')' : '') : 'ends ' + (w.endsAt || 'open-ended')) + (w.stragglers.length ? ' · stragglers: ' + w.stragglers.map((x) => x.instanceId).join(', ') : '') : 'No window.');
    // record (#13): the closing record as recorded — the real end, every instance's reads, the audit.
    const wa = w && w.report && w.report.writeAudit;
    set('write-audit', !wa ? (w && w.phase !== 'closed' ? '' : 'Storage write audit: none (PostgreSQL only).')
      : wa.verdict === 'clean' ? 'Storage write audit: clean — no audited table was written during the window (' + wa.tablesAudited + ' tables).'
      : wa.verdict === 'writes' ? 'Storage write audit: WRITES DURING THE WINDOW in ' + wa.written.map((t) => t.schema + '.' + t.table + ' (+' + t.inserted + ' ~' + t.updated + ' -' + t.deleted + ')').join(', ') + '.'
      : 'Storage write audit: UNKNOWN — ' + (wa.reasons || []).concat((wa.unknown || []).map((t) => t.schema + '.' + t.table + ': ' + t.reason)).join('; ') + '.');
    set('record-reads', w ? recordReads(w) : '');
    renderEscalations(w, e.escalation, s.readHealth);
    $('#instances').replaceChildren(...s.instances.map((i) => {
      const tr = document.createElement('tr');
      [i.id + (i.self ? ' (this one)' : ''), i.live ? 'yes' : 'no', 'v' + i.ackedVersion, String(i.inFlight), i.oldestOperation || ''].forEach((v) => cell(tr, v));
      return tr;
    }));
    $('#audit').replaceChildren(...a.entries.slice().reverse().map((e) => {
      const tr = document.createElement('tr');
      [e.at, e.actor, e.action, (e.from.phase || e.from.mode) + ' → ' + (e.to.phase || e.to.mode), 'v' + e.version, e.reason || ''].forEach((v) => cell(tr, v));
      return tr;
    }));
  } catch (err) { flash(String(err.message || err)); }
}

function show() {
  $('#login').hidden = !!token;
  $('#panel').hidden = !token;
}

$('#login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem('quiesce-token', token);
  show(); refresh();
});
$('#begin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { reason: f.get('reason'), message: sentence(f.get('message')), durationMinutes: Number(f.get('minutes')) };
  if (f.get('startsAt')) body.startsAt = new Date(f.get('startsAt')).toISOString();
  if (f.get('rollbackPlan')) body.rollbackPlan = f.get('rollbackPlan');
  try { const r = await api('POST', '/windows', body); flash('Window ' + r.window.id + ' ' + r.window.phase + '.'); } catch (err) { flash(err.message); }
  refresh();
});
$('#extend').addEventListener('submit', async (e) => {
  e.preventDefault();
  const minutes = Number(new FormData(e.target).get('minutes'));
  try { const r = await api('PATCH', '/windows/current', { extendMinutes: minutes }); flash('Now ends ' + r.window.endsAt + '.'); } catch (err) { flash(err.message); }
  refresh();
});
// Ending acts on every instance at once: ask first.
$('#end').addEventListener('click', () => { $('#end-confirm').hidden = false; $('#end-yes').focus(); });
$('#end-no').addEventListener('click', () => { $('#end-confirm').hidden = true; $('#end').focus(); });
$('#end-yes').addEventListener('click', async () => {
  $('#end-confirm').hidden = true;
  try { await api('POST', '/windows/current/end', {}); flash('Writes are back on.'); } catch (err) { flash(err.message); }
  refresh();
});
show();
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
