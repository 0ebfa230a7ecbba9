// The operators' dashboard (docs/operators.md): one page over the journal API. It polls
// /_ops/journal?after=<last id> every second for the live feed, refreshes /_ops/stats and the newest
// page of the feed (statuses change as deliveries are attempted) every few seconds, and shows one entry
// in full from /_ops/journal/{id}, with a retry for what failed.
//
// Everything the gateway returns is untrusted text: it only ever reaches the page as text nodes
// (el() appends strings as Text), never through innerHTML. Every request is awaited inside a try, so a
// network failure is shown on the page instead of ending up as an uncaught error in the console.

const kTokenKey = 'fhirgate.operatorToken';
const kFeedLimit = 200;     // rows kept in the live feed
const kPollMs = 1000;       // new journal entries
const kRefreshMs = 3000;    // stats and the newest page (status changes)
const kRetryable = new Set(['failed', 'dead-letter', 'rejected']);
const kErrorStatuses = new Set(['rejected', 'failed']);
const kStatusOrder = ['received', 'mapped', 'stored', 'routed', 'delivered', 'withheld', 'discarded',
                      'rejected', 'failed', 'dead-letter'];

const base = new URL('.', location.href);  // the dashboard's own folder: /_ops/
const $ = (id) => document.getElementById(id);

const state = {
  token: '',
  generation: 0,        // bumped on sign-out and filter changes: stale answers are dropped
  loaded: false,        // the feed's first page has answered
  lastId: 0,
  rows: new Map(),      // id -> {entry, tr}
  selected: 0,
  notice: null,         // the outcome of the last retry, shown with the selected entry
  timers: new Set(),
};

// ---- DOM helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

const kSvg = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(kSvg, tag);
  setAttrs(node, attrs);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function time(instant) {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime())) return String(instant ?? '');
  return d.toLocaleTimeString([], {hour12: false});
}

function dateTime(instant) {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime())) return String(instant ?? '');
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], {hour12: false})}`;
}

function age(seconds) {
  if (!(seconds >= 0)) return '–';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function badge(status) {
  const kind = status === 'dead-letter' ? 'dead' : kErrorStatuses.has(status) ? 'bad'
      : status === 'withheld' || status === 'discarded' ? 'warn' : 'ok';
  return el('span', {class: `badge ${kind}`, 'data-status': status}, status || '?');
}

function direction(dir) {
  return el('span', {class: `dir ${dir}`, title: dir === 'in' ? 'inbound' : 'outbound'},
            dir === 'in' ? '→ in' : 'out →');
}

// ---- The API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Calls the operators' API; resolves to the parsed JSON answer, rejects with an ApiError (status 0 for
// a network failure). A 401 or 403 also asks for a token again.
async function call(path, method = 'GET') {
  const generation = state.generation;
  let response;
  try {
    response = await fetch(new URL(path, base), {
      method,
      headers: {Authorization: `Bearer ${state.token}`, Accept: 'application/json'},
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, `The gateway cannot be reached (${e.message})`);
  }
  const text = await response.text().catch(() => '');
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const why = body?.issue?.[0]?.diagnostics || body?.error || text.slice(0, 300) || response.statusText;
    if ((response.status === 401 || response.status === 403) && generation === state.generation)
      signIn(`The gateway refused the token (${response.status}: ${why}). Give an operator token.`);
    throw new ApiError(response.status, `${response.status}: ${why}`);
  }
  if (method === 'GET' && generation !== state.generation) throw new ApiError(-1, 'superseded');
  return body;
}

// ---- Connection state and problems -------------------------------------------------------------

function showProblem(error) {
  if (error instanceof ApiError && (error.status === -1 || error.status === 401 || error.status === 403))
    return;
  const p = $('problem');
  p.textContent = error?.message || String(error);
  p.hidden = false;
  setConnection('trouble', 'connection trouble: retrying');
}

function clearProblem() {
  $('problem').hidden = true;
  setConnection('live', `live · updated ${new Date().toLocaleTimeString([], {hour12: false})}`);
}

function setConnection(kind, text) {
  const c = $('connection');
  c.dataset.state = kind;
  c.textContent = text;
}

// ---- Token -------------------------------------------------------------------------------------

function tokenFromFragment() {
  if (!location.hash.includes('token=')) return '';
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  history.replaceState(null, '', location.pathname + location.search);  // not left in the address bar
  return token.trim();
}

function signIn(reason) {
  stop();
  state.token = '';
  sessionStorage.removeItem(kTokenKey);
  $('board').hidden = true;
  $('sign-out').hidden = true;
  $('problem').hidden = true;
  $('sign-in').hidden = false;
  state.selected = 0;
  state.notice = null;
  $('detail-title').textContent = 'Message';
  clear($('detail-body'));
  if (reason) $('sign-in-reason').textContent = reason;
  setConnection('idle', 'not connected');
  $('token-input').focus();
}

function connect(token) {
  state.token = token;
  sessionStorage.setItem(kTokenKey, token);
  $('sign-in').hidden = true;
  $('board').hidden = false;
  $('sign-out').hidden = false;
  setConnection('idle', 'connecting…');
  start();
}

// ---- Polling -----------------------------------------------------------------------------------

function stop() {
  state.generation++;
  for (const t of state.timers) clearTimeout(t);
  state.timers.clear();
}

function later(work, ms) {
  const t = setTimeout(() => {
    state.timers.delete(t);
    work();
  }, ms);
  state.timers.add(t);
}

function start() {
  stop();
  resetFeed();
  const generation = state.generation;
  // Runs `work` now and then `every` ms after each run ends, until the next stop().
  const loop = (work, every) => {
    const run = async () => {
      if (generation !== state.generation) return;
      try {
        await work();
        clearProblem();
      } catch (e) {
        showProblem(e);
      }
      if (generation === state.generation) later(run, every);
    };
    run();
  };
  loop(async () => {
    await refreshFeed();
    await refreshStats();
  }, kRefreshMs);
  later(() => loop(pollFeed, kPollMs), kPollMs);
}

function feedQuery(extra) {
  const q = new URLSearchParams(extra);
  const dir = $('filter-direction').value;
  const status = $('filter-status').value;
  const partner = $('filter-partner').value.trim();
  if (dir) q.set('direction', dir);
  if (status) q.set('status', status);
  if (partner) q.set('partner', partner);
  return `journal?${q}`;
}

// Entries newer than the newest shown.
async function pollFeed() {
  if (!state.loaded) return;
  const query = state.lastId ? {after: state.lastId, _count: kFeedLimit} : {_count: kFeedLimit};
  const answer = await call(feedQuery(query));
  upsert(answer?.entries ?? []);
}

// The newest page again: new entries and the changed statuses of those shown.
async function refreshFeed() {
  const answer = await call(feedQuery({_count: 100}));
  upsert(answer?.entries ?? []);
  state.loaded = true;
}

// ---- Live feed ---------------------------------------------------------------------------------

function resetFeed() {
  state.loaded = false;
  state.lastId = 0;
  state.rows.clear();
  clear($('feed-rows'));
  $('feed-empty').hidden = false;
}

function feedCells(e) {
  return [
    el('td', {class: 'num'}, String(e.id)),
    el('td', {title: e.received}, time(e.received)),
    el('td', {}, e.partner || '(unknown)'),
    el('td', {}, direction(e.direction)),
    el('td', {class: 'type', title: e.error || e.type}, e.type),
    el('td', {}, badge(e.status)),
  ];
}

function upsert(entries) {
  const body = $('feed-rows');
  for (const e of entries) {
    if (typeof e?.id !== 'number') continue;
    const known = state.rows.get(e.id);
    if (known) {
      if (known.entry.status !== e.status || known.entry.updated !== e.updated) {
        const moved = known.entry.status !== e.status;
        clear(known.tr, feedCells(e));
        known.tr.dataset.status = e.status;
        known.entry = e;
        if (moved && e.id === state.selected) select(e.id, {quiet: true});
      }
      continue;
    }
    const tr = el('tr', {'data-id': e.id, 'data-status': e.status, 'data-direction': e.direction,
                         tabindex: 0, class: e.id === state.selected ? 'selected' : null},
                  feedCells(e));
    // Newest first: before the first row with a smaller id.
    let next = null;
    for (const row of body.children) {
      if (Number(row.dataset.id) < e.id) {
        next = row;
        break;
      }
    }
    body.insertBefore(tr, next);
    state.rows.set(e.id, {entry: e, tr});
    if (e.id > state.lastId) state.lastId = e.id;
  }
  while (body.children.length > kFeedLimit) {
    const last = body.lastElementChild;
    state.rows.delete(Number(last.dataset.id));
    last.remove();
  }
  $('feed-empty').hidden = body.children.length > 0;
}

// ---- Stats: counts, traffic charts, queues, latest errors --------------------------------------

async function refreshStats() {
  const stats = await call('stats?window=3600&bucket=60');
  renderCounts(stats?.byStatus ?? {});
  renderTraffic(stats?.partners ?? [], stats?.bucketSeconds ?? 60);
  renderQueues(stats?.queues ?? []);
  renderErrors(stats?.latestErrors ?? []);
}

function renderCounts(byStatus) {
  const counts = $('counts');
  const total = (names) => names.reduce((n, s) => n + (Number(byStatus[s]) || 0), 0);
  const known = kStatusOrder.filter((s) => s in byStatus && s !== 'dead-letter');
  const others = Object.keys(byStatus).filter((s) => !kStatusOrder.includes(s)).sort();
  const tile = (label, value, kind) =>
    el('div', {class: `tile ${kind}`, 'data-count': label}, el('strong', {}, String(value)), el('span', {}, label));
  clear(counts,
        tile('errors', total([...kErrorStatuses]), total([...kErrorStatuses]) ? 'bad' : 'quiet'),
        tile('dead letters', total(['dead-letter']), total(['dead-letter']) ? 'dead' : 'quiet'),
        el('div', {class: 'rule'}),
        [...known, ...others].map((s) => tile(s, Number(byStatus[s]) || 0, 'plain')));
  counts.dataset.state = 'ready';
}

// One mirrored bar chart per partner: inbound bars above the axis, outbound below.
function renderTraffic(partners, bucketSeconds) {
  const box = $('traffic');
  if (!partners.length) {
    clear(box, el('p', {class: 'muted'}, 'No traffic in the last hour.'));
    box.dataset.state = 'ready';
    return;
  }
  clear(box, partners.map((p) => trafficChart(p, bucketSeconds)));
  box.dataset.state = 'ready';
}

function trafficChart(series, bucketSeconds) {
  const ins = (series.in ?? []).map(Number);
  const outs = (series.out ?? []).map(Number);
  const n = Math.max(ins.length, outs.length, 1);
  const sum = (a) => a.reduce((x, y) => x + (y || 0), 0);
  const peak = Math.max(1, ...ins, ...outs);
  const W = 600, H = 96, left = 34, right = 6, mid = H / 2;
  const step = (W - left - right) / n;
  const bar = Math.max(1, step - 1);
  const scale = (mid - 4) / peak;
  const bars = [];
  for (let i = 0; i < n; i++) {
    const x = left + i * step;
    const ago = Math.round(((n - 1 - i) * bucketSeconds) / 60);
    const label = `${ago ? `${ago} min ago` : 'this minute'}: ${ins[i] || 0} in, ${outs[i] || 0} out`;
    if (ins[i]) bars.push(svg('rect', {class: 'in', x, y: mid - ins[i] * scale, width: bar, height: ins[i] * scale},
                              svg('title', {}, label)));
    if (outs[i]) bars.push(svg('rect', {class: 'out', x, y: mid, width: bar, height: outs[i] * scale},
                               svg('title', {}, label)));
  }
  const minutes = Math.round((n * bucketSeconds) / 60);
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H + 14}`, role: 'img', class: 'chart',
                            'aria-label': `${series.partner}: ${sum(ins)} inbound and ${sum(outs)} outbound`},
      svg('line', {class: 'axis', x1: left, x2: W - right, y1: mid, y2: mid}),
      svg('text', {x: left - 4, y: 10, class: 'tick end'}, String(peak)),
      svg('text', {x: left - 4, y: H - 2, class: 'tick end'}, String(peak)),
      svg('text', {x: left - 4, y: mid + 4, class: 'tick end'}, '0'),
      svg('text', {x: left, y: H + 12, class: 'tick'}, `−${minutes} min`),
      svg('text', {x: W - right, y: H + 12, class: 'tick end'}, 'now'),
      bars);
  return el('figure', {class: 'traffic-chart', 'data-partner': series.partner,
                       'data-in': sum(ins), 'data-out': sum(outs)},
            el('figcaption', {},
               el('strong', {}, series.partner || '(unknown)'),
               el('span', {class: 'totals'}, ` ${sum(ins)} in · ${sum(outs)} out · now ${ins[n - 1] || 0}/${outs[n - 1] || 0} a minute`)),
            chart);
}

function renderQueues(queues) {
  const box = $('queues');
  box.dataset.state = 'ready';
  if (!queues.length) {
    clear(box, el('p', {class: 'muted'}, 'Nothing queued.'));
    return;
  }
  const peak = Math.max(1, ...queues.map((q) => Number(q.depth) || 0));
  clear(box, el('table', {class: 'queues'},
      el('thead', {}, el('tr', {}, el('th', {}, 'Destination'), el('th', {}, 'Depth'), el('th', {}, 'Oldest'))),
      el('tbody', {}, queues.map((q) => el('tr', {'data-destination': q.destination},
          el('td', {}, q.destination),
          el('td', {class: 'num'},
             el('span', {class: 'meter'},
                svg('svg', {viewBox: '0 0 60 8', class: 'meter'},
                    svg('rect', {x: 0, y: 0, width: 60, height: 8, class: 'track'}),
                    svg('rect', {x: 0, y: 0, width: (60 * (Number(q.depth) || 0)) / peak, height: 8,
                                 class: q.depth ? 'fill' : 'track'}))),
             ` ${q.depth ?? 0}`),
          el('td', {class: 'num'}, q.depth ? age(Number(q.oldestAgeSeconds)) : '–'))))));
}

function renderErrors(entries) {
  const list = $('errors');
  list.dataset.state = 'ready';
  if (!entries.length) {
    clear(list, el('li', {class: 'muted'}, 'No errors in the last hour.'));
    return;
  }
  clear(list, entries.map((e) => el('li', {'data-id': e.id, 'data-status': e.status, tabindex: 0},
      el('div', {}, badge(e.status), ' ', el('span', {class: 'when', title: e.received}, time(e.received)), ' ',
         el('strong', {}, e.partner || '(unknown)'), ' ', direction(e.direction), ' ', el('span', {}, e.type)),
      e.error ? el('div', {class: 'why'}, e.error) : null)));
}

// ---- Detail pane -------------------------------------------------------------------------------

// Shows entry `id` in the detail pane. A retry's outcome (`notice`) stays with it until another entry is
// picked; `quiet` keeps what is shown until the answer comes (no "Loading…" flash).
async function select(id, {notice, quiet = false} = {}) {
  if (!id) return;
  if (notice !== undefined) state.notice = notice;
  else if (id !== state.selected) state.notice = null;
  state.selected = id;
  for (const {tr} of state.rows.values()) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  const body = $('detail-body');
  $('detail-title').textContent = `Message #${id}`;
  if (!quiet) clear(body, el('p', {class: 'muted'}, 'Loading…'));
  try {
    const entry = await call(`journal/${id}`);
    if (state.selected === id) renderDetail(entry, state.notice);
  } catch (e) {
    if (state.selected !== id || e.status === -1) return;
    clear(body, state.notice, el('p', {class: 'problem'}, `Cannot show #${id}: ${e.message}`));
  }
}

function renderDetail(e, notice) {
  const facts = [
    ['Received', dateTime(e.received)], ['Partner', e.partner || '(unknown)'], ['Direction', e.direction],
    ['Transport', e.transport], ['Format', e.format], ['Type', e.type], ['Size', `${e.size ?? 0} bytes`],
    ['Correlation', e.correlationId], ['Delivery', e.deliveryId ? `#${e.deliveryId}` : null],
    ['Retry of', e.retryOf ? `#${e.retryOf}` : null],
  ].filter(([, v]) => v !== null && v !== undefined && v !== '');
  const restRequest = e.direction === 'in' && e.format === 'fhir-rest';
  let action = null;
  if (kRetryable.has(e.status)) {
    if (restRequest)
      action = el('p', {class: 'muted'}, 'A REST request is retried by its sender.');
    else if (e.direction === 'in' && !e.hasPayload)
      action = el('p', {class: 'muted'}, 'Its payload is no longer kept: it cannot be retried.');
    else
      action = el('button', {id: 'retry', type: 'button', onclick: (ev) => retry(e.id, ev.currentTarget)},
                  e.direction === 'out' ? 'Retry delivery' : 'Process again');
  }
  clear($('detail-body'),
      el('div', {class: 'detail-head'}, badge(e.status), ' ', direction(e.direction), ' ',
         el('strong', {}, e.type || '')),
      e.error ? el('p', {class: kRetryable.has(e.status) ? 'why' : 'muted'},
                   kRetryable.has(e.status) ? e.error : `Earlier: ${e.error}`) : null,
      action || notice ? el('div', {class: 'actions'}, action, notice ?? el('p', {id: 'retry-result', role: 'status'})) : null,
      el('dl', {class: 'facts'}, facts.map(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))])),
      el('h3', {}, 'Stages'),
      stagesView(e.stages ?? []),
      el('h3', {}, 'Resulting resources'),
      (e.resources ?? []).length
          ? el('ul', {class: 'resources'}, e.resources.map((r) => el('li', {}, el('code', {}, String(r)))))
          : el('p', {class: 'muted'}, 'None.'),
      el('h3', {}, 'Payload'),
      e.payload !== undefined && e.payload !== null
          ? el('pre', {class: 'payload'}, pretty(e.payload))
          : el('p', {class: 'muted'}, e.hasPayload ? 'Not returned.' : 'Not kept.'),
      el('h3', {}, `Audit events (${(e.auditEvents ?? []).length})`),
      auditView(e.auditEvents ?? []));
}

function stagesView(stages) {
  if (!stages.length) return el('p', {class: 'muted'}, 'None recorded.');
  return el('ol', {class: 'stages'}, stages.map((s) =>
      el('li', {}, el('span', {}, s.stage), el('span', {class: 'ms'}, `${Number(s.ms ?? 0).toFixed(1)} ms`))));
}

function auditView(events) {
  if (!events.length) return el('p', {class: 'muted'}, 'None.');
  const outcomes = {0: 'success', 4: 'minor failure', 8: 'serious failure', 12: 'major failure'};
  return el('ul', {class: 'audit'}, events.map((a) => {
    const what = a.subtype?.[0]?.code || a.type?.code || '';
    const who = (a.agent ?? []).map((g) => g.who?.display || g.who?.identifier?.value || g.who?.reference)
        .filter(Boolean).join(', ');
    return el('li', {},
        el('div', {}, el('span', {class: 'when'}, dateTime(a.recorded)), ' ', el('strong', {}, what), ' ',
           el('span', {class: `outcome o${a.outcome}`}, outcomes[a.outcome] ?? `outcome ${a.outcome ?? '?'}`),
           who ? ` · ${who}` : ''),
        el('details', {}, el('summary', {}, `AuditEvent/${a.id ?? ''}`),
           el('pre', {}, JSON.stringify(a, null, 2))));
  }));
}

// JSON indented, HL7 v2 one segment a line, anything else as it is.
function pretty(text) {
  const s = String(text);
  const t = s.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.stringify(JSON.parse(s), null, 2);
    } catch {
      return s;
    }
  }
  return s.replace(/\r\n?/g, '\n');
}

async function retry(id, button) {
  button.disabled = true;
  const pending = $('retry-result');
  if (pending) pending.textContent = 'Retrying…';
  let note;
  let show = id;
  try {
    const entry = await call(`journal/${id}/$retry`, 'POST');
    const fresh = entry?.id && entry.id !== id;
    note = el('p', {id: 'retry-result', role: 'status', class: 'good'},
              fresh ? `Retried: new entry #${entry.id}, ${entry.status}.`
                    : `Retried: #${id} is ${entry?.status ?? 'queued'} again.`);
    if (fresh) show = entry.id;
    await refreshFeed().catch(showProblem);
  } catch (e) {
    note = el('p', {id: 'retry-result', role: 'status', class: 'problem'}, `Retry failed: ${e.message}`);
  }
  if (state.selected === id) await select(show, {notice: note, quiet: true});
}

// ---- Wiring ------------------------------------------------------------------------------------

function entryIdFrom(event) {
  const item = event.target.closest('[data-id]');
  return item ? Number(item.dataset.id) : 0;
}

function onPick(container) {
  container.addEventListener('click', (ev) => select(entryIdFrom(ev)));
  container.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      select(entryIdFrom(ev));
    }
  });
}

function init() {
  onPick($('feed-rows'));
  onPick($('errors'));
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token-input').value.trim();
    $('token-input').value = '';
    if (token) connect(token);
  });
  $('sign-out').addEventListener('click', () => signIn('Give an operator token.'));
  let pending = 0;
  const refilter = () => {
    clearTimeout(pending);
    pending = setTimeout(() => { if (state.token) start(); }, 300);
  };
  $('feed-filter').addEventListener('submit', (ev) => ev.preventDefault());
  $('filter-direction').addEventListener('change', refilter);
  $('filter-status').addEventListener('change', refilter);
  $('filter-partner').addEventListener('input', refilter);

  window.addEventListener('hashchange', () => {  // a #token=... link opened in this tab
    const given = tokenFromFragment();
    if (given) connect(given);
  });
  const token = tokenFromFragment() || sessionStorage.getItem(kTokenKey) || '';
  if (token) connect(token);
  else signIn();
}

init();
