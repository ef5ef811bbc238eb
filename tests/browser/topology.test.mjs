// The dashboard's Routes, Listeners and Certificates in a real browser, for a known routes.yaml:
// a plain listener, a development HTTPS listener (certificate signed by kinfra's local CA) and a
// redirecting one; routes with a host, strip_prefix, and a stopped service; per-route traffic; an
// ACME listener whose CA cannot be reached (its temporary certificate, the CA's error, the next try).
//
// Run by ctest with KINFRA_BINARY, KINFRA_TEST_SERVICE and KINFRA_ARTIFACTS set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, freePort, serviceBin, startKinfra, waitFor, closeAll, launchBrowser } from './support.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-topology-'));
const apiPort = await freePort();
const docsPort = await freePort();
const noCaPort = await freePort();  // nothing listens there: every ACME attempt fails at once
fs.writeFileSync(path.join(dir, 'routes.yaml'), `
listen:
  - 127.0.0.1:0
  - address: 127.0.0.1:0
    tls: { self_signed: true, names: [app.test] }
  - address: 127.0.0.1:0
    redirect_to_https: true
    plain_paths: [/__status__]
  - address: 127.0.0.1:0
    tls: { acme: { names: [shop.example.com], directory: "https://127.0.0.1:${noCaPort}/dir" } }
state_dir: ${dir}/state
admin_listen: off
workers: 1
routes:
  - { path: /api, service: api, strip_prefix: true }
  - { host: docs.app.test, path: /, service: docs }
  - { path: /, service: api }
services:
  api:
    command: ["${serviceBin}", "--name", "api"]
    port: ${apiPort}
    health: { http: /health, interval: 200ms }
  docs:
    command: ["${serviceBin}", "--name", "docs"]
    port: ${docsPort}
    autostart: false
`);

let kinfra;
let browser;
let exitCode = 0;
try {
  let ready;
  ({ kinfra, ready } = await startKinfra(dir));
  const [plain, https, redirect, acme] = ready.listen;
  const base = 'http://' + plain;
  browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await page.goto(base + '/kinfra');
  const rows = async (id) => page.locator(`#${id} tbody tr`).evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.children).map((td) => td.textContent.trim())));

  // Routes: in routes.yaml order, host ("any" when none), path, strip_prefix, service, its state.
  await waitFor('api to run on its route', async () => (await rows('routes-table'))[0]?.[4].includes('running'), 20000);
  let routes = await rows('routes-table');
  const expect = [['any', '/api', 'yes', 'api'], ['docs.app.test', '/', 'no', 'docs'], ['any', '/', 'no', 'api']];
  if (routes.length !== 3) fail('routes table: ' + JSON.stringify(routes));
  expect.forEach((want, i) => {
    if (JSON.stringify(routes[i].slice(0, 4)) !== JSON.stringify(want)) fail(`route ${i}: ${JSON.stringify(routes[i])}`);
  });
  if (!routes[1][4].includes('stopped')) fail('the docs route does not show its stopped service: ' + routes[1][4]);

  // Traffic per route: requests to /api/… count on the /api route only; 404s from the service are not 5xx.
  await waitFor('a request rate on the /api route', async () => {
    for (let i = 0; i < 10; i++) await (await fetch(base + '/api/items')).text();
    routes = await rows('routes-table');
    return /req\/s$/.test(routes[0][5]) && !routes[0][5].startsWith('0.0') && routes[2][5].startsWith('0.0');
  }, 15000);
  if (routes[0][6] !== '0.0%') fail('the /api route shows 5xx: ' + routes[0][6]);

  // Listeners: address, kind and protocols of each, the redirect's target port.
  const listeners = await rows('listeners-table');
  const byAddress = Object.fromEntries(listeners.map((r) => [r[0], r]));
  if (byAddress[plain]?.[1] !== 'HTTP') fail('plain listener: ' + JSON.stringify(listeners));
  if (byAddress[https]?.[1] !== 'HTTPS') fail('https listener: ' + JSON.stringify(listeners));
  const httpsPort = https.split(':').pop();
  if (byAddress[redirect]?.[1] !== 'HTTP → HTTPS' || !byAddress[redirect][3].includes(httpsPort) ||
      !byAddress[redirect][3].includes('/__status__'))
    fail('redirect listener: ' + JSON.stringify(listeners));
  if (!listeners.every((r) => r[2].includes('http/1.1'))) fail('protocols: ' + JSON.stringify(listeners));

  // Certificates: the development certificate, its names (with localhost and the loopback IPs),
  // its issuer (the local CA), when it expires, on which listener.
  let certs = await rows('certificates-table');
  if (certs.length !== 2) fail('certificates: ' + JSON.stringify(certs));
  const [names, issuer, expires, source, listener] = certs[0];
  for (const n of ['app.test', 'localhost', '127.0.0.1', '::1']) if (!names.includes(n)) fail(`no ${n} in ${names}`);
  if (!issuer.startsWith('kinfra local CA')) fail('issuer: ' + issuer);
  if (!/^\d{4}-\d{2}-\d{2} \(36\d days\)$/.test(expires)) fail('expiry: ' + expires);
  if (source !== 'local CA' || listener !== https) fail('source/listener: ' + source + ' ' + listener);

  // The ACME listener: its temporary certificate, why the CA gave none (in red), when it tries again.
  await waitFor('the ACME error on the dashboard', async () => {
    certs = await rows('certificates-table');
    return certs[1]?.[3].includes('last attempt failed');
  }, 15000);
  const [acmeNames, , , acmeSource, acmeListener] = certs[1];
  if (acmeNames !== 'shop.example.com' || acmeListener !== acme) fail('ACME row: ' + JSON.stringify(certs[1]));
  if (!acmeSource.startsWith('temporary (waiting for ACME)') || !acmeSource.includes('cannot connect') ||
      !/next attempt \d{4}-\d{2}-\d{2} \d{2}:\d{2}/.test(acmeSource))
    fail('ACME source: ' + acmeSource);
  const acmeLines = await page.locator('#certificates-table tbody tr').nth(1).locator('td').nth(3).locator('.detail')
    .evaluateAll((ds) => ds.map((d) => [d.textContent, d.className]));
  const error = acmeLines.find(([text]) => text.startsWith('last attempt failed'));
  if (!error || !error[1].includes('failing')) fail('the ACME error is not marked as failing: ' + JSON.stringify(acmeLines));
  const expiry = page.locator('#certificates-table tbody tr').nth(1).locator('td').nth(2);
  if ((await expiry.getAttribute('class')).includes('failing')) fail('the temporary certificate\'s expiry is shown as a warning');

  // Text only: a route path cannot inject markup (everything above came through textContent).
  if (await page.locator('#routes-table script, #routes-table img').count()) fail('markup in the routes table');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-topology.png'), fullPage: true });
  if (problems.length) fail(problems.join('\n'));
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e.message);
  exitCode = 1;
} finally {
  await closeAll(browser, kinfra);
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
