// A hostile page in a real browser (Debian's chromium, driven by playwright-core) can do nothing
// to kinfra's admin surface:
// 1. DNS rebinding: a page served under a foreign name that resolves to 127.0.0.1 (here
//    attacker.test, mapped by --host-resolver-rules), same-origin with kinfra's own port, gets 421
//    on every admin path of both listeners, reads no service data and runs no action.
// 2. CSRF against the real name: a page of another site (attacker.test on its own port) that POSTs
//    forms and no-cors fetches to http://127.0.0.1:<kinfra>/__action__/… gets 403, nothing happens,
//    and it cannot read /__status__ cross-origin.
// 3. Positive controls: the real dashboard (http://127.0.0.1:<kinfra>/kinfra) reads /__status__,
//    logs and metrics, and its own POST restarts the service, so the refusals above are not vacuous.
//
// Run by ctest (see tests/CMakeLists.txt) with KINFRA_BINARY, KINFRA_TEST_SERVICE and
// KINFRA_ARTIFACTS set; screenshots are written to KINFRA_ARTIFACTS. Only 127.0.0.1 is contacted.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, freePort, serviceBin, startKinfra, waitFor, closeAll, launchBrowser } from './support.mjs';

function step(text) {
  console.log('ok: ' + text);
}

// A line the web service prints: it must never reach a hostile page.
const secretLine = 'web-secret-log-line-7f3a9c';
// Strings that only appear in the admin surface's data.
const leakMarkers = ['"pid"', '"services"', '"restarts"', '"logs"', secretLine, '# TYPE', '# HELP', 'kinfra_requests'];
function leaks(body) {
  return leakMarkers.filter((m) => body.includes(m));
}

// The attacker: a plain web server on 127.0.0.1 that serves a page to anyone who asks.
const attackerMarker = 'attacker-page-5d1e';
const attackerHits = [];
const attackerServer = http.createServer((req, res) => {
  attackerHits.push({ method: req.method, url: req.url, host: req.headers.host });
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { 'Content-Type': 'text/plain' });
    res.end('no\n');
    return;
  }
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>Free prizes</title></head>
<body style="font-family: sans-serif; background: #fff8e1">
<h1 id="marker">${attackerMarker}</h1>
<p>Served to <code>${String(req.headers.host).replace(/[^\w.:-]/g, '')}</code>.</p>
<pre id="result"></pre>
</body></html>
`;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
});
await new Promise((resolve) => attackerServer.listen(0, '127.0.0.1', resolve));
const attackerPort = attackerServer.address().port;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-rebinding-'));
const webPort = await freePort();
fs.writeFileSync(path.join(dir, 'routes.yaml'), `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1
access_log: access.log
log_format: json
routes:
  - { path: /web, service: web }
  - { path: /, service: attacker }
services:
  attacker:
    url: "http://127.0.0.1:${attackerPort}"
    health: off
  web:
    command: ["${serviceBin}", "--name", "web", "--print", "${secretLine}"]
    port: ${webPort}
    health: { http: /health, interval: 200ms }
`);

let kinfra;
let browser;
let exitCode = 0;
try {
  let ready;
  ({ kinfra, ready } = await startKinfra(dir));
  if (!ready.listen?.[0]?.startsWith('127.0.0.1:')) fail('unexpected listen address in ready.json: ' + JSON.stringify(ready));
  if (!ready.admin?.[0]?.startsWith('127.0.0.1:')) fail('no admin listener in ready.json: ' + JSON.stringify(ready));
  const kinfraPort = Number(ready.listen[0].split(':')[1]);
  const adminPort = Number(ready.admin[0].split(':')[1]);
  const realBase = `http://127.0.0.1:${kinfraPort}`;
  const realAdminBase = `http://127.0.0.1:${adminPort}`;

  // kinfra's own view of web, asked outside the browser with Host 127.0.0.1:PORT.
  async function webStatus() {
    const res = await fetch(realBase + '/__status__');
    if (res.status !== 200) fail('/__status__ from node answered ' + res.status);
    const doc = await res.json();
    if (!doc.services?.web) fail('/__status__ has no services.web');
    return doc.services.web;
  }
  function expectUntouched(web, when) {
    if (web.state !== 'running') fail(`${when}: web is ${web.state}, not running`);
    if (web.restarts !== 0) fail(`${when}: web has ${web.restarts} restarts`);
    if (web.maintenance?.on) fail(`${when}: web was put in maintenance`);
    if (web.pid !== firstPid) fail(`${when}: web's pid changed from ${firstPid} to ${web.pid}`);
  }
  await waitFor('web to run', async () => (await webStatus()).state === 'running', 20000);
  await waitFor('web to log its line', async () =>
    (await (await fetch(realBase + '/__logs__/web?format=text')).text()).includes(secretLine), 10000);
  const firstPid = (await webStatus()).pid;
  if (typeof (await webStatus()).restarts !== 'number') fail('restarts is not a number in /__status__');
  step(`kinfra on ${kinfraPort} (admin ${adminPort}), attacker server on ${attackerPort}, web running with pid ${firstPid}`);

  // attacker.test is 127.0.0.1; any other name fails to resolve, so nothing leaves this machine.
  browser = await launchBrowser(['--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']);
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const problems = [];

  // kinfra's own record of what it answered (log_format: json, one line per request).
  function accessLog() {
    const file = path.join(dir, 'access.log');
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  }

  // Runs fetches inside a page, as its own script would; returns status, body and any error.
  async function fetchAll(page, calls) {
    return page.evaluate(async (calls) => {
      const out = [];
      for (const c of calls) {
        try {
          const r = await fetch(c.url, c.init || {});
          out.push({ url: c.url, method: (c.init && c.init.method) || 'GET', status: r.status, type: r.type, body: await r.text() });
        } catch (e) {
          out.push({ url: c.url, method: (c.init && c.init.method) || 'GET', error: String(e) });
        }
      }
      const result = document.getElementById('result');
      if (result) result.textContent = out.map((o) => `${o.method} ${o.url} -> ${o.error || o.status}`).join('\n');
      return out;
    }, calls);
  }
  const post = (body) => ({ method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  // The admin surface, as a rebound page would try it: relative URLs, so same-origin.
  const adminCalls = [
    { url: '/__status__' },
    { url: '/__status__?format=json' },
    { url: '/__logs__/web?format=text' },
    { url: '/__logs__/web?format=json' },
    { url: '/__logs__/web' },
    { url: '/kinfra' },
    { url: '/kinfra/' },
    { url: '/metrics' },
    { url: '/__metrics__' },
    { url: '/__history__' },
    { url: '/__history__?all=1' },
    { url: '/__events__' },
    { url: '/__stream__' },
    { url: '/__stream__?logs=1' },
    { url: '/kinfra/service/web' },
    { url: '/__status__', init: { method: 'HEAD' } },
    { url: '/__action__/restart/web', init: { method: 'POST' } },
    { url: '/__action__/status/web', init: post(JSON.stringify({ state: 'error', status_message: 'pwned' })) },
    { url: '/__action__/stop/web', init: { method: 'POST' } },
    { url: '/__action__/maintenance/web', init: post(JSON.stringify({ on: true, message: 'pwned' })) },
    { url: '/__action__/reload', init: { method: 'POST' } },
  ];
  function expectAllRefused(results, where) {
    for (const r of results) {
      const what = `${where}: ${r.method} ${r.url}`;
      if (r.error) fail(`${what} failed in the browser instead of answering 421: ${r.error}`);
      if (r.status !== 421) fail(`${what} answered ${r.status}, not 421: ${r.body.slice(0, 200)}`);
      if (leaks(r.body).length) fail(`${what} leaked ${leaks(r.body).join(', ')}: ${r.body.slice(0, 200)}`);
      if (r.method !== 'HEAD' && !r.body.includes('admin_hosts')) fail(`${what}: the 421 does not mention admin_hosts: ${r.body.slice(0, 200)}`);
    }
  }

  // 1. DNS rebinding, same origin: attacker.test:<kinfra port> is served by kinfra from the
  //    attacker service, so its script is same-origin with kinfra's listener.
  const rebound = await context.newPage();
  rebound.on('pageerror', (e) => problems.push('rebound page error: ' + e.message));
  const reboundBase = `http://attacker.test:${kinfraPort}`;
  const landing = await rebound.goto(reboundBase + '/');
  if (landing.status() !== 200) fail('the attacker page through kinfra answered ' + landing.status());
  if ((await rebound.textContent('#marker')) !== attackerMarker) fail('the page through kinfra is not the attacker page');
  if (!attackerHits.some((h) => h.url === '/')) fail('the attacker service never saw the page request');
  if (landing.request().headers().host && landing.request().headers().host !== `attacker.test:${kinfraPort}`)
    fail('the browser sent Host ' + landing.request().headers().host);
  step(`rebinding: ${reboundBase}/ is the attacker page, served by kinfra from the attacker service`);

  const reboundResults = await fetchAll(rebound, adminCalls);
  expectAllRefused(reboundResults, 'rebound page');
  await rebound.screenshot({ path: path.join(artifacts, 'rebinding-attacker-page.png'), fullPage: true });
  step(`rebinding: ${reboundResults.length} admin requests (reads, HEAD, 5 action POSTs) from the rebound page all got 421 naming admin_hosts, no data`);

  // Spellings that might slip past an exact path match: whatever answers them, never data.
  const spellings = ['/%5F%5Fstatus%5F%5F', '/__status__/', reboundBase + '//__status__', '/web/../__status__', '/kinfra/../__status__',
    '/__STATUS__', '/__status__%2F', '/__logs__/web/?format=text', '/%5f%5flogs%5f%5f/web?format=text', '/metrics/',
    '/__action__/restart/web/'];
  const spellingResults = await fetchAll(rebound, spellings.map((url) => ({ url })).concat(
    ['/__action__/restart/web/', '/__action__//restart/web', '/%5F%5Faction%5F%5F/restart/web', '/__action__/restart/./web']
      .map((url) => ({ url, init: { method: 'POST' } }))));
  for (const r of spellingResults) {
    if (r.error) continue;
    if (leaks(r.body).length) fail(`rebound page: ${r.method} ${r.url} (${r.status}) leaked ${leaks(r.body).join(', ')}`);
  }
  console.log('     ' + spellingResults.map((r) => `${r.method} ${r.url} -> ${r.error ? 'error' : r.status}`).join(', '));
  step(`rebinding: ${spellingResults.length} other spellings of admin paths leaked nothing`);

  // The public part of /__status__?service=NAME answers on any Host, and holds no pid or logs.
  const [pub] = await fetchAll(rebound, [{ url: '/__status__?service=web' }]);
  if (pub.status !== 200) fail('public /__status__?service=web answered ' + pub.status);
  const pubDoc = JSON.parse(pub.body);
  if (pubDoc.state !== 'running') fail('public status says ' + pubDoc.state);
  for (const key of ['pid', 'port', 'logs', 'restarts', 'services', 'uptime'])
    if (key in pubDoc) fail(`public /__status__?service=web has "${key}": ${pub.body}`);
  if (leaks(pub.body).length) fail('public status leaked ' + leaks(pub.body).join(', '));
  step('rebinding: public /__status__?service=web answers 200 with keys ' + Object.keys(pubDoc).join(',') + ' only');

  // The admin listener under the foreign name: the page there is kinfra's own 421 page, and a
  // script running in that origin (what a rebound page on that port would be) gets nothing.
  const adminRebound = await context.newPage();
  const adminLanding = await adminRebound.goto(`http://attacker.test:${adminPort}/kinfra`);
  if (adminLanding.status() !== 421) fail('the admin listener answered /kinfra under attacker.test with ' + adminLanding.status());
  const adminLandingText = await adminRebound.textContent('body');
  if (!adminLandingText.includes('admin_hosts')) fail('the 421 page does not mention admin_hosts: ' + adminLandingText.slice(0, 200));
  if (leaks(await adminRebound.content()).length) fail('the 421 page leaked ' + leaks(await adminRebound.content()).join(', '));
  await adminRebound.screenshot({ path: path.join(artifacts, 'rebinding-admin-listener-421.png'), fullPage: true });
  const adminRoot = await fetchAll(adminRebound, [{ url: '/' }]);
  if (adminRoot[0].error || leaks(adminRoot[0].body).length) fail('admin listener / under attacker.test: ' + JSON.stringify(adminRoot[0]).slice(0, 300));
  const adminReboundResults = await fetchAll(adminRebound, adminCalls);
  expectAllRefused(adminReboundResults, 'admin listener rebound');
  step(`rebinding: admin listener under attacker.test:${adminPort}: 421 page, and ${adminReboundResults.length} admin requests from that origin got 421 (/ -> ${adminRoot[0].status})`);

  // Nothing happened, as kinfra itself tells a local client.
  expectUntouched(await webStatus(), 'after the rebinding attack');
  const pushed = await webStatus();
  if (pushed.status_message === 'pwned' || pushed.state === 'error') fail('a pushed status got through: ' + JSON.stringify(pushed));
  if (attackerHits.some((h) => h.url.includes('__'))) fail('admin paths reached the attacker service: ' + JSON.stringify(attackerHits));
  step(`rebinding: web still running, restarts 0, same pid, no maintenance, no pushed status (node, Host 127.0.0.1:${kinfraPort})`);

  // kinfra's access log agrees: under the foreign name its own answers were refusals (the public
  // status aside) and nothing went to web. (Chromium retries a 421 once on a fresh connection,
  // so each refused request shows up twice.)
  const foreign = accessLog().filter((e) => e.host.startsWith('attacker.test:'));
  const adminActions = foreign.filter((e) => e.method === 'POST' && e.route === '(kinfra)');
  const postsSent = [...adminCalls, ...adminCalls, ...spellingResults].filter((c) => (c.init?.method || c.method) === 'POST').length;
  if (adminActions.length < postsSent) fail(`kinfra logged only ${adminActions.length} action POSTs under attacker.test, ${postsSent} were sent`);
  for (const e of foreign) {
    if (e.service === 'web') fail('a request under attacker.test reached web: ' + JSON.stringify(e));
    if (e.route !== '(kinfra)') continue;
    const ok = e.status >= 300 || e.target.startsWith('/__status__?service=');
    if (!ok) fail(`kinfra answered ${e.method} ${e.host}${e.target} with ${e.status}`);
    if (e.method === 'POST' && e.status !== 421) fail(`kinfra answered ${e.method} ${e.host}${e.target} with ${e.status}, not 421`);
  }
  step(`rebinding: kinfra's access log: ${foreign.length} requests under attacker.test, ${adminActions.length} action POSTs all 421, no 2xx from the admin surface but the public status`);

  // 2. CSRF: a page of another site (attacker.test on the attacker server's own port) aims at
  //    kinfra's real name. The browser sends Origin: http://attacker.test:PORT and
  //    Sec-Fetch-Site: cross-site.
  const csrf = await context.newPage();
  csrf.on('pageerror', (e) => problems.push('csrf page error: ' + e.message));
  const csrfOrigin = `http://attacker.test:${attackerPort}`;
  await csrf.goto(csrfOrigin + '/');
  if ((await csrf.textContent('#marker')) !== attackerMarker) fail('the cross-site attacker page did not load');

  // 2a. Cross-origin reads: CORS gives the page nothing.
  const reads = await fetchAll(csrf, [
    { url: realBase + '/__status__' },
    { url: realBase + '/__logs__/web?format=text' },
    { url: realBase + '/metrics' },
    { url: realAdminBase + '/__status__' },
    { url: realBase + '/__status__', init: { credentials: 'include' } },
  ]);
  for (const r of reads) if (!r.error) fail(`cross-site page could read ${r.url}: ${r.status} ${r.body.slice(0, 200)}`);
  const opaque = await fetchAll(csrf, [{ url: realBase + '/__status__', init: { mode: 'no-cors' } }]);
  if (opaque[0].error ? false : (opaque[0].type !== 'opaque' || opaque[0].body !== '')) fail('a no-cors read was not opaque: ' + JSON.stringify(opaque[0]));
  step(`csrf: ${reads.length} cross-origin reads of /__status__, logs, metrics (both listeners) blocked by the browser; no-cors read opaque`);

  // 2b. Cross-site actions: form POSTs (into an iframe) and no-cors fetches, on both listeners.
  const forms = [
    { action: `${realBase}/__action__/restart/web`, enctype: 'application/x-www-form-urlencoded', fields: { x: '1' } },
    // The classic JSON-by-form trick: the body reads {"state":"error","x":"="}.
    { action: `${realBase}/__action__/status/web`, enctype: 'text/plain', fields: { '{"state":"error","status_message":"pwned","x":"': '"}' } },
    { action: `${realBase}/__action__/maintenance/web?on=1&message=pwned`, enctype: 'application/x-www-form-urlencoded', fields: { on: 'true' } },
    { action: `${realAdminBase}/__action__/restart/web`, enctype: 'application/x-www-form-urlencoded', fields: { x: '1' } },
    { action: `${realAdminBase}/__action__/stop/web`, enctype: 'multipart/form-data', fields: { x: '1' } },
  ];
  for (const form of forms) {
    // Each form is submitted from a fresh copy of the attacker page and navigates the tab itself.
    await csrf.goto(csrfOrigin + '/');
    const answered = csrf.waitForResponse((r) => r.url() === form.action && r.request().method() === 'POST', { timeout: 10000 })
      .catch((e) => fail(`no answer seen to the form POST ${form.action}: ${e.message}`));
    await csrf.evaluate((form) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = form.action;
      f.enctype = form.enctype;

      for (const [name, value] of Object.entries(form.fields)) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        f.appendChild(input);
      }
      document.body.appendChild(f);
      setTimeout(() => f.submit(), 0);
    }, form);
    const response = await answered;
    await csrf.waitForURL(form.action, { timeout: 10000 });
    if (response.status() !== 403) fail(`form POST ${form.action} answered ${response.status()}`);
    // What the browser really sent: the headers kinfra judges the request by.
    const sent = await response.request().allHeaders();
    if (sent.origin !== csrfOrigin) fail(`form POST ${form.action} was sent with Origin ${sent.origin}`);
    if (sent['sec-fetch-site'] !== 'cross-site') fail(`form POST ${form.action} was sent with Sec-Fetch-Site ${sent['sec-fetch-site']}`);
  }
  await csrf.goto(csrfOrigin + '/');
  if ((await csrf.textContent('#marker')) !== attackerMarker) fail('the cross-site attacker page did not load again');
  const noCors = await fetchAll(csrf, [
    { url: `${realBase}/__action__/restart/web`, init: { method: 'POST', mode: 'no-cors' } },
    { url: `${realBase}/__action__/status/web`, init: { method: 'POST', mode: 'no-cors', body: JSON.stringify({ state: 'error', status_message: 'pwned' }) } },
    { url: `${realBase}/__action__/stop/web`, init: { method: 'POST', mode: 'no-cors', credentials: 'include' } },
    { url: `${realBase}/__action__/reload`, init: { method: 'POST', mode: 'no-cors' } },
    { url: `${realAdminBase}/__action__/restart/web`, init: { method: 'POST', mode: 'no-cors' } },
    { url: `${realAdminBase}/__action__/status/web`, init: { method: 'POST', mode: 'no-cors', body: JSON.stringify({ state: 'error' }) } },
  ]);
  // The page learns nothing either way: an opaque answer, or a network error when the browser
  // drops kinfra's answer (Cross-Origin-Resource-Policy: same-origin).
  for (const r of noCors) if (!r.error && (r.type !== 'opaque' || r.body !== '')) fail(`no-cors POST ${r.url}: ${JSON.stringify(r)}`);
  // A CORS POST with a JSON body needs a preflight, which kinfra does not grant.
  const preflighted = await fetchAll(csrf, [
    { url: `${realBase}/__action__/status/web`, init: { ...post(JSON.stringify({ state: 'error' })), mode: 'cors' } },
  ]);
  if (!preflighted[0].error) fail('a preflighted cross-origin POST was let through: ' + JSON.stringify(preflighted[0]));
  // kinfra itself got every one of them and refused each with 403; the preflighted POST never came.
  const fromCsrf = (e) => e.referer.startsWith(csrfOrigin + '/') && e.target.startsWith('/__action__/');
  const expected = forms.length + noCors.length;
  const csrfLog = await waitFor('kinfra to log every cross-site action', () => {
    const posts = accessLog().filter((e) => fromCsrf(e) && e.method === 'POST');
    return posts.length >= expected ? posts : null;
  }, 10000);
  for (const e of csrfLog) if (e.status !== 403) fail(`kinfra answered the cross-site POST ${e.host}${e.target} with ${e.status}`);
  if (csrfLog.length !== expected) fail(`kinfra logged ${csrfLog.length} cross-site POSTs, ${expected} were sent`);
  const preflights = accessLog().filter((e) => fromCsrf(e) && e.method === 'OPTIONS');
  if (preflights.some((e) => e.status < 300)) fail('kinfra granted a preflight: ' + JSON.stringify(preflights));
  await csrf.screenshot({ path: path.join(artifacts, 'rebinding-csrf-page.png'), fullPage: true });
  step(`csrf: ${forms.length} form POSTs and ${noCors.length} no-cors POSTs (Origin ${csrfOrigin}, Sec-Fetch-Site cross-site) reached kinfra and all got 403 (its access log); ` +
    `the JSON POST stopped at its preflight (OPTIONS -> ${preflights.map((e) => e.status).join(',') || 'none'})`);

  expectUntouched(await webStatus(), 'after the CSRF attack');
  const afterCsrf = await webStatus();
  if (afterCsrf.status_message === 'pwned' || afterCsrf.state === 'error') fail('a pushed status got through: ' + JSON.stringify(afterCsrf));
  step('csrf: web still running, restarts 0, same pid, no maintenance, no pushed status');

  // 3. Positive controls: the real dashboard, on both listeners, can read and act.
  const dashboard = await context.newPage();
  dashboard.on('pageerror', (e) => problems.push('dashboard page error: ' + e.message));
  await dashboard.goto(realBase + '/kinfra');
  if ((await dashboard.textContent('h1')).indexOf('KInfra Dashboard') < 0) fail('no dashboard header');
  const own = await fetchAll(dashboard, [{ url: '/__status__' }, { url: '/__logs__/web?format=text' }, { url: '/metrics' }]);
  for (const r of own) if (r.error || r.status !== 200) fail(`dashboard ${r.url}: ${r.error || r.status}`);
  const ownDoc = JSON.parse(own[0].body);
  if (!ownDoc.services?.web || ownDoc.services.web.pid !== firstPid) fail('the dashboard does not see services.web: ' + own[0].body.slice(0, 200));
  if (!own[1].body.includes(secretLine)) fail("the dashboard does not see web's log line");
  const adminDashboard = await context.newPage();
  await adminDashboard.goto(realAdminBase + '/kinfra');
  const ownAdmin = await fetchAll(adminDashboard, [{ url: '/__status__' }]);
  if (ownAdmin[0].error || ownAdmin[0].status !== 200 || !JSON.parse(ownAdmin[0].body).services?.web)
    fail('the admin listener dashboard cannot read /__status__: ' + JSON.stringify(ownAdmin[0]).slice(0, 200));
  step('control: the real dashboard (both listeners) reads /__status__ (200, services.web, same pid), logs and metrics');

  const ownAnswer = dashboard.waitForResponse((r) => r.url() === realBase + '/__action__/restart/web', { timeout: 10000 });
  const [restart] = await fetchAll(dashboard, [{ url: '/__action__/restart/web', init: { method: 'POST' } }]);
  if (restart.error || restart.status !== 200 || !JSON.parse(restart.body).success)
    fail('the dashboard could not restart web: ' + JSON.stringify(restart));
  const ownHeaders = await (await ownAnswer).request().allHeaders();
  if (ownHeaders.origin !== realBase) fail('the dashboard POST was sent with Origin ' + ownHeaders.origin);
  const restarted = await waitFor('web to run again after its restart', async () => {
    const web = await webStatus();
    return web.state === 'running' && web.restarts === 1 && web.pid !== firstPid ? web : null;
  }, 20000);
  step(`control: the dashboard's own POST (Origin ${ownHeaders.origin}, Sec-Fetch-Site ${ownHeaders['sec-fetch-site']}) restarted web: restarts 1, pid ${firstPid} -> ${restarted.pid}`);

  if (problems.length) fail(problems.join('\n'));
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e.message);
  exitCode = 1;
} finally {
  await closeAll(browser, kinfra);
  attackerServer.closeAllConnections();
  await new Promise((r) => attackerServer.close(r));
  if (fs.existsSync(path.join(dir, 'access.log'))) fs.copyFileSync(path.join(dir, 'access.log'), path.join(artifacts, 'rebinding-access.log'));
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
