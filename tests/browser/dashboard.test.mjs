// The operators' dashboard (GET /_ops/) in real headless Chromium against a real fhirgate: the page
// loads without console errors, shows the traffic this test makes, shows an entry's payload, and a
// dead-letter delivery retried from the page is delivered. Saves a screenshot of the dashboard under load.
//
// Environment: FHIRGATE_BINARY (the fhirgate executable), FHIRGATE_SOURCE_DIR (the repository),
// FHIRGATE_ARTIFACT_DIR (where dashboard.png goes), CHROMIUM (default /usr/bin/chromium),
// FHIRGATE_TEST_TIME_FACTOR (stretches the deadlines for a sanitized fhirgate; scripts/sanitize sets it).
// Exit code 0 when every check passed, 1 otherwise.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import {tmpdir} from 'node:os';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

import {chromium} from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const sourceDir = resolve(process.env.FHIRGATE_SOURCE_DIR || join(here, '..', '..'));
const binary = resolve(process.env.FHIRGATE_BINARY || join(sourceDir, 'build', 'gateway', 'fhirgate'));
const artifactDir = resolve(process.env.FHIRGATE_ARTIFACT_DIR || join(sourceDir, 'build', 'artifacts'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const kTimeFactor = Math.max(1, Number(process.env.FHIRGATE_TEST_TIME_FACTOR) || 1);
const kWholeTestMs = 90_000 * kTimeFactor;  // a hard stop, far above the usual run of ~7 s
const kSettleMs = 1500;       // lets the feed and the stats catch up before the screenshot
const kSanitizerReport = /^.*(ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer)/m;

const started = Date.now();
const log = (message) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` until it returns something truthy; fails with `what` after `ms`.
async function until(what, probe, ms = 10_000, every = 100) {
  const deadline = Date.now() + ms * kTimeFactor;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(every);
  }
}

// ---- Child processes, always cleaned up --------------------------------------------------------

const children = new Set();
const cleanups = [];
const diagnosis = {page: null, problems: []};  // for a failure's report: the page and what it logged

function killChildren() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(signal, () => {
    killChildren();
    process.exit(1);
  });

function run(args, options = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(binary, args, {stdio: ['ignore', 'pipe', 'pipe'], ...options});
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000 * kTimeFactor);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolveRun(out);
      else reject(new Error(`fhirgate ${args.join(' ')} exited ${code}: ${err || out}`));
    });
  });
}

// Starts `fhirgate serve` on port 0; resolves to {child, base} once it prints its address.
function serve(config, db, stderrFile) {
  return new Promise((resolveServe, reject) => {
    const child = spawn(binary, ['serve', '--config', config, '--port', '0', '--db', db],
                        {stdio: ['ignore', 'pipe', 'pipe']});
    children.add(child);
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fhirgate did not start within ${20 * kTimeFactor} s: ${out}${err}`));
    }, 20_000 * kTimeFactor);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /fhirgate listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveServe({child, base: m[1]});
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
      writeFileSync(stderrFile, err);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`fhirgate exited (${code ?? signal}) before listening: ${out}${err}`));
    });
  });
}

// Stops the gateway and waits until its output is read to the end (a sanitizer reports as it exits).
async function stopGateway(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('close', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000 * kTimeFactor);
  await exited;
  clearTimeout(timer);
}

// A port nobody listens on (until the test brings the trust "back up" on it).
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

// The acute trust's FHIR server once it is back: takes every PUT /fhir/Patient/{id} and records it.
function startTrust(port) {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({method: req.method, url: req.url, body});
      res.writeHead(req.method === 'PUT' ? 200 : 201, {'Content-Type': 'application/fhir+json'});
      res.end(body || '{}');
    });
  });
  return new Promise((resolveTrust, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveTrust({server, received}));
  });
}

// ---- The gateway's setup -----------------------------------------------------------------------

function gatewayConfig(trustPort) {
  return {
    security: {enabled: true, consentPolicy: 'opt-out'},
    profilesDir: join(sourceDir, 'profiles'),
    partners: [
      {id: 'gp-practice', name: 'Riverside Medical Practice', odsCode: 'Y12345',
       access: {Patient: ['create', 'read', 'update']}, inbound: ['fhir-rest', 'hl7v2-mllp']},
      {id: 'acute-trust', name: 'Northfield Hospitals NHS Trust', odsCode: 'RX1',
       access: {Patient: ['read']}, inbound: ['fhir-rest'],
       endpoint: {fhirBaseUrl: `http://127.0.0.1:${trustPort}/fhir`, timeoutMs: 300}},
    ],
    routes: [{id: 'to-trust', from: 'gp-practice', types: ['Patient'], to: ['acute-trust']}],
    delivery: {maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 100},
    roles: [{id: 'operator', name: 'Ops', role: 'operator', access: {}}],
  };
}

function client(base, token) {
  return async (method, path, body, extraHeaders = {}) => {
    const headers = {Authorization: `Bearer ${token}`, Accept: 'application/json, application/fhir+json',
                     ...extraHeaders};
    if (body !== undefined) headers['Content-Type'] ??= 'application/fhir+json';
    const r = await fetch(base + path, {method, headers, body, signal: AbortSignal.timeout(5000)});
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return {status: r.status, headers: r.headers, text, json};
  };
}

const patient = (family) => JSON.stringify({
  resourceType: 'Patient', name: [{family, given: ['Dash']}], gender: 'female', birthDate: '1980-02-03',
});
const kInvalid = [
  JSON.stringify({resourceType: 'Patient', gender: 'sometimes'}),  // 422: not a gender
  '{"resourceType": "Patient", "name": [',                          // 400: not JSON
];

// Keeps writing Patients (every fourth one invalid) until stopped.
function backgroundTraffic(gp) {
  let running = true;
  let n = 0;
  const counts = {ok: 0, rejected: 0, other: 0};
  const done = (async () => {
    while (running) {
      const body = n % 4 === 3 ? kInvalid[n % 2] : patient(`Background${n}`);
      n++;
      try {
        const r = await gp('POST', '/Patient', body);
        if (r.status === 201) counts.ok++;
        else if (r.status >= 400 && r.status < 500) counts.rejected++;
        else counts.other++;
      } catch {
        counts.other++;
      }
      await sleep(120);
    }
  })();
  return {counts, stop: async () => {
    running = false;
    await done;
  }};
}

// ---- The test ----------------------------------------------------------------------------------

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'fhirgate-dashboard-'));
  cleanups.push(() => rmSync(dir, {recursive: true, force: true}));
  mkdirSync(artifactDir, {recursive: true});
  const config = join(dir, 'gateway.json');
  const db = join(dir, 'fhirgate.db');
  const stderrFile = join(dir, 'stderr.log');
  const trustPort = await freePort();
  writeFileSync(config, JSON.stringify(gatewayConfig(trustPort), null, 2));
  const token = async (holder) =>
      (await run(['partner', 'add-token', holder, '--config', config, '--db', db])).trim().split('\n').pop().trim();
  const gpToken = await token('gp-practice');
  const operatorToken = await token('operator');
  assert.ok(gpToken && operatorToken, 'add-token printed no token');

  const gateway = await serve(config, db, stderrFile);
  cleanups.push(async () => {
    await stopGateway(gateway.child);
    try {
      copyFileSync(stderrFile, join(artifactDir, 'dashboard-gateway.log'));
    } catch {
      return;  // the gateway wrote nothing to stderr
    }
    const report = kSanitizerReport.exec(readFileSync(stderrFile, 'utf8'));
    if (report) {
      failed = true;
      console.error(`dashboard test: FAILED: the gateway reported:\n${report.input.slice(report.index)}`);
    }
  });
  const base = gateway.base;
  log(`gateway at ${base}, the acute trust (down) at 127.0.0.1:${trustPort}`);
  const gp = client(base, gpToken);
  const ops = client(base, operatorToken);

  const probe = await ops('GET', '/_ops/journal?_count=1');
  assert.equal(probe.status, 200, `GET /_ops/journal: ${probe.status} ${probe.text.slice(0, 300)}`);
  const index = await fetch(`${base}/_ops/`);
  assert.equal(index.status, 200, 'GET /_ops/ serves the dashboard');
  assert.match(index.headers.get('content-type') ?? '', /^text\/html/, 'the dashboard is text/html');

  // Traffic the page must show: Patients created (routed to the trust, which is down: dead letters),
  // and requests the gateway rejects.
  const created = [];
  const correlation = `dashboard-test-${process.pid}`;
  for (let i = 0; i < 6; i++) {
    const r = await gp('POST', '/Patient', patient(`Dashboard${i}`), {'X-Correlation-Id': `${correlation}-${i}`});
    assert.equal(r.status, 201, `create Patient: ${r.status} ${r.text.slice(0, 300)}`);
    created.push(r.json.id);
  }
  for (const body of kInvalid) {
    const r = await gp('POST', '/Patient', body);
    assert.ok(r.status >= 400 && r.status < 500, `an invalid Patient is refused with 4xx, not ${r.status}`);
  }
  // HL7 v2 over HTTP: an ADT^A01 that is stored, and one without a PID segment that is rejected (its
  // payload kept, so the page offers to process it again).
  const adt = readFileSync(join(sourceDir, 'tests', 'data', 'adt_a01.hl7'), 'utf8')
      .split(/\r\n?|\n/).filter(Boolean).join('\r');
  const v2 = (message, id) => gp('POST', '/$ingest', message, {'Content-Type': 'x-application/hl7-v2+er7',
                                                            'X-Correlation-Id': `${correlation}-${id}`});
  const adtStored = await v2(adt, 'adt');
  assert.equal(adtStored.status, 200, `$ingest ADT^A01: ${adtStored.status} ${adtStored.text.slice(0, 300)}`);
  const noPid = adt.split('\r').filter((segment) => !segment.startsWith('PID')).join('\r').replace('MSG00001', 'MSG00002');
  const adtRejected = await v2(noPid, 'adt-no-pid');
  assert.ok(adtRejected.status >= 400 && adtRejected.status < 500, `an ADT^A01 without PID is refused, not ${adtRejected.status}`);
  log(`created ${created.length} Patients, sent ${kInvalid.length} invalid ones and two ADT^A01 (one rejected)`);
  const traffic = backgroundTraffic(gp);
  cleanups.push(() => traffic.stop());

  const browser = await chromium.launch({executablePath: chromiumPath, args: ['--no-sandbox'], timeout: 20_000});
  cleanups.push(() => browser.close());
  const page = await browser.newPage({viewport: {width: 1440, height: 1000}});
  page.setDefaultTimeout(10_000 * kTimeFactor);
  const problems = diagnosis.problems;
  diagnosis.page = page;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (r.url().startsWith(base)) problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });

  // Without a token the page asks for one; a refused token asks again; the form's token is used.
  const signIn = await browser.newPage();
  signIn.setDefaultTimeout(10_000 * kTimeFactor);
  const signInProblems = [];
  signIn.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) signInProblems.push(`console error: ${m.text()}`);
  });
  signIn.on('pageerror', (e) => signInProblems.push(`page error: ${e.message}`));
  await signIn.goto(`${base}/_ops/`);
  await signIn.locator('#token-form').waitFor();
  assert.ok(await signIn.locator('#board').isHidden(), 'no board before a token is given');
  await signIn.locator('#token-input').fill('not-a-token');
  await signIn.locator('#token-form button[type="submit"]').click();
  await until('the refused token to be asked for again', async () =>
      /refused the token \(401/.test(await signIn.locator('#sign-in-reason').textContent()) &&
      (await signIn.locator('#token-form').isVisible()));
  await signIn.locator('#token-input').fill(operatorToken);
  await signIn.locator('#token-form button[type="submit"]').click();
  await signIn.locator('#connection[data-state="live"]').waitFor();
  await signIn.close();
  assert.deepEqual(signInProblems, [], 'signing in logged no errors but the refused token');
  log('signing in with the form works; a refused token is asked for again');

  await page.goto(`${base}/_ops/#token=${encodeURIComponent(operatorToken)}`, {waitUntil: 'load'});
  assert.ok(!page.url().includes(operatorToken), 'the token is taken out of the address bar');
  assert.equal(await page.evaluate(() => Object.values(sessionStorage).length), 1, 'the token is kept in sessionStorage');

  // The live feed shows the creates, the charts and the queue panel render.
  const rows = page.locator('#feed-rows tr');
  await rows.filter({hasText: 'create Patient'}).filter({hasText: 'gp-practice'}).first().waitFor();
  await rows.filter({hasText: 'rejected'}).first().waitFor();
  await page.locator('#traffic figure[data-partner="gp-practice"] svg rect.in').first().waitFor();
  await until('the chart to count the creates', async () =>
      Number(await page.locator('#traffic figure[data-partner="gp-practice"]').getAttribute('data-in')) >= created.length);
  await page.locator('#queues[data-state="ready"]').waitFor();
  await page.locator('#counts[data-state="ready"]').waitFor();
  log('the feed, the charts and the queues show the traffic');

  // The live feed follows without a reload: a Patient created now appears.
  const entryOf = async (correlationId) => {
    const answer = await ops('GET', `/_ops/journal?direction=in&correlation=${correlationId}`);
    assert.equal(answer.status, 200, `GET /_ops/journal?correlation=: ${answer.status} ${answer.text.slice(0, 300)}`);
    assert.equal(answer.json.entries.length, 1, `one inbound entry with correlation id ${correlationId}`);
    return answer.json.entries[0];
  };
  const live = await gp('POST', '/Patient', patient('Livefeed'), {'X-Correlation-Id': `${correlation}-live`});
  assert.equal(live.status, 201);
  assert.equal(live.headers.get('x-correlation-id'), `${correlation}-live`, 'the correlation id is answered');
  const liveEntry = await entryOf(`${correlation}-live`);
  await page.locator(`#feed-rows tr[data-id="${liveEntry.id}"]`).waitFor();
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');

  // An entry's payload: the Patient JSON that was sent.
  const first = await entryOf(`${correlation}-0`);
  assert.equal(first.type, 'create Patient');
  assert.equal(first.partner, 'gp-practice');
  await page.locator(`#feed-rows tr[data-id="${first.id}"]`).click();
  const payload = page.locator('#detail pre.payload');
  await payload.waitFor();
  const shown = await payload.textContent();
  assert.match(shown, /"resourceType": "Patient"/, 'the payload pane shows the Patient JSON');
  assert.match(shown, /Dashboard0/, 'the payload pane shows the first Patient sent');
  await page.locator('#detail .stages li').first().waitFor();
  log(`entry #${first.id} shows its payload and stages`);

  // A rejected HL7 v2 message is processed again from the page: a new entry that names the first.
  const rejectedV2 = await entryOf(`${correlation}-adt-no-pid`);
  assert.equal(rejectedV2.status, 'rejected');
  assert.equal(rejectedV2.format, 'hl7v2');
  await page.locator(`#feed-rows tr[data-id="${rejectedV2.id}"]`).click();
  await until('the rejected message to be shown', async () =>
      /MSH\|/.test(await page.locator('#detail pre.payload').textContent()) &&
      (await page.locator('#detail-title').textContent()).includes(`#${rejectedV2.id}`));
  await page.locator('#detail #retry').click();
  const again = await until('the page to report the new entry', async () =>
      /Retried: new entry #(\d+)/.exec(await page.locator('#retry-result').textContent()));
  const second = (await ops('GET', `/_ops/journal/${again[1]}`)).json;
  assert.equal(second.retryOf, rejectedV2.id, `entry #${again[1]} is a retry of #${rejectedV2.id}`);
  log(`the rejected ADT^A01 #${rejectedV2.id} processed again from the page: #${second.id}, ${second.status}`);

  // A dead letter (the trust is down, two attempts), retried from the page once the trust is back.
  const deadRow = page.locator('#feed-rows tr[data-status="dead-letter"]').first();
  await deadRow.waitFor({timeout: 15_000});
  const deadId = Number(await deadRow.getAttribute('data-id'));
  const dead = (await ops('GET', `/_ops/journal/${deadId}`)).json;
  assert.equal(dead.direction, 'out');
  assert.ok(dead.deliveryId, `the dead letter #${deadId} names its delivery`);
  const deliveryOf = async () =>
      (await ops('GET', '/_ops/deliveries?_count=1000')).json.deliveries.find((d) => d.id === dead.deliveryId);
  assert.equal((await deliveryOf())?.status, 'dead', `delivery #${dead.deliveryId} is dead before the retry`);
  const trust = await startTrust(trustPort);
  cleanups.push(() => new Promise((r) => {
    trust.server.close(r);
    trust.server.closeAllConnections();  // the gateway keeps its connection to the trust open
  }));
  await deadRow.click();
  const retry = page.locator('#detail #retry');
  await retry.waitFor();
  await retry.click();
  await until('the page to report the retry', async () => /Retried/.test(await page.locator('#retry-result').textContent()));
  log(`retried #${deadId} from the page: ${await page.locator('#retry-result').textContent()}`);
  const delivered = await until(`delivery #${dead.deliveryId} to be delivered after the retry`, async () => {
    const d = await deliveryOf();
    return d?.status === 'delivered' ? d : null;
  });
  assert.ok(delivered.attempts >= 1);
  const resource = dead.resources?.[0] ?? '';
  const patientId = resource.split('/')[1];
  assert.ok(trust.received.some((r) => r.method === 'PUT' && r.url === `/fhir/Patient/${patientId}`),
            `the trust received PUT /fhir/Patient/${patientId}`);
  await until(`the journal entry #${deadId} to say delivered`,
              async () => (await ops('GET', `/_ops/journal/${deadId}`)).json?.status === 'delivered');
  log(`delivery #${dead.deliveryId} of ${resource} was delivered`);

  // The dashboard under load.
  await until('more background traffic', async () => traffic.counts.ok >= 10 && traffic.counts.rejected >= 2, 15_000);
  await sleep(kSettleMs);
  const shot = join(artifactDir, 'dashboard.png');
  await page.screenshot({path: shot, fullPage: true});
  log(`screenshot: ${shot} (${readFileSync(shot).length} bytes)`);

  assert.deepEqual(problems, [], 'the page logged no errors');
}

let failed = false;
const hardStop = setTimeout(() => {
  console.error(`dashboard test: FAILED: still running after ${kWholeTestMs / 1000} s`);
  killChildren();
  process.exit(1);
}, kWholeTestMs);
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`dashboard test: FAILED: ${e.stack || e.message}`);
  if (diagnosis.problems.length) console.error(`the page logged:\n  ${diagnosis.problems.join('\n  ')}`);
  if (diagnosis.page) {
    const shot = join(artifactDir, 'dashboard-failure.png');
    await diagnosis.page.screenshot({path: shot, fullPage: true, timeout: 5000}).then(
        () => console.error(`the page as it was: ${shot}`), () => {});
  }
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (e) {
      console.error(`cleanup: ${e.message}`);
    }
  }
  clearTimeout(hardStop);
  killChildren();
}
console.log(failed ? 'dashboard test: 0 passed, 1 failed' : 'dashboard test: 1 passed, 0 failed');
process.exit(failed ? 1 : 0);
