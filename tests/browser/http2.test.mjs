// The dashboard, a proxied page and a fallback page in a real browser over HTTP/2: Chromium
// negotiates h2 by ALPN on kinfra's HTTPS listener (a development certificate, not trusted by
// this browser: --ignore-certificate-errors), and every resource reports nextHopProtocol "h2".
// Restart and Stop work over it (the admin actions are POSTs over the same connection).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, serviceBin, startKinfra, waitFor, closeAll, launchBrowser, freePort } from './support.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-h2-'));
const apiPort = await freePort();
fs.writeFileSync(path.join(dir, 'routes.yaml'), `
listen:
  - address: 127.0.0.1:0
    tls: { self_signed: true }
admin_listen: off
state_dir: ${path.join(dir, 'state')}
workers: 1
routes:
  - { path: /, service: api }
services:
  api:
    command: ["${serviceBin}", "--name", "api", "--keep-alive"]
    port: ${apiPort}
    health: { http: /health, interval: 100ms }
    hold: off
`);

let kinfra;
let browser;
let exitCode = 0;
try {
  let ready;
  ({ kinfra, ready } = await startKinfra(dir));
  const base = 'https://' + ready.listen[0];
  browser = await launchBrowser(['--ignore-certificate-errors']);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('requestfailed', (r) => problems.push('request failed: ' + r.url() + ' ' + (r.failure() || {}).errorText));

  await page.goto(base + '/kinfra');
  const card = page.locator('.card[data-service="api"]');
  await waitFor('the api card says running', async () => (await card.locator('.badge').textContent()) === 'running',
    20000);
  const protocols = await page.evaluate(() => performance.getEntriesByType('navigation')
    .concat(performance.getEntriesByType('resource'))
    .map((e) => [e.name, e.nextHopProtocol]));
  if (protocols.length < 2) fail('expected the page and its resources: ' + JSON.stringify(protocols));
  for (const [name, proto] of protocols)
    if (proto !== 'h2') fail(`${name} came over ${proto}, not h2`);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-h2.png'), fullPage: true });

  // A proxied page over h2.
  const proxied = await context.newPage();
  await proxied.goto(base + '/whoami');
  if (!(await proxied.textContent('body')).includes('pid ')) fail('the service did not answer over h2');
  const proto = await proxied.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  if (proto !== 'h2') fail('the proxied page came over ' + proto);

  // Stop from the dashboard (a POST over h2), then the fallback page over h2.
  await card.locator('button.stop').click();
  await waitFor('the api card says stopped', async () => (await card.locator('.badge').textContent()) === 'stopped',
    20000);
  const fallback = await proxied.goto(base + '/anything');
  if (fallback.status() !== 503) fail('expected the fallback page (503), got ' + fallback.status());
  if (!(await proxied.textContent('body')).toLowerCase().includes('api')) fail('the fallback page does not name api');
  const fproto = await proxied.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  if (fproto !== 'h2') fail('the fallback page came over ' + fproto);
  await proxied.screenshot({ path: path.join(artifacts, 'fallback-h2.png'), fullPage: true });

  // Start again from the dashboard: back to running.
  await card.locator('button.stop[data-action="start"]').click();
  await waitFor('the api card says running again', async () =>
    (await card.locator('.badge').textContent()) === 'running', 20000);
  const real = problems.filter((p) => !p.includes('net::ERR_ABORTED'));
  if (real.length) fail('problems in the page: ' + real.join('; '));
  console.log('ok: the dashboard, a proxied page and a fallback page over h2');
} catch (e) {
  console.error(e.stack || String(e));
  exitCode = 1;
} finally {
  await closeAll(browser, kinfra);
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(exitCode);
}
