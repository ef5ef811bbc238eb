// The dashboard in a real browser (Debian's chromium, driven by playwright-core): it shows the
// cards, Restart takes a card from starting to running, View Logs opens the log view in a new tab,
// and the page of a stopped service turns back into the real page once the service is back.
//
// Run by ctest (see tests/CMakeLists.txt) with KINFRA_BINARY, KINFRA_TEST_SERVICE and
// KINFRA_ARTIFACTS set; screenshots are written to KINFRA_ARTIFACTS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, freePort, serviceBin, startKinfra, waitFor, closeAll, launchBrowser } from './support.mjs';


const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-browser-'));
const webPort = await freePort();
const apiPort = await freePort();
fs.writeFileSync(path.join(dir, 'routes.yaml'), `
listen: 127.0.0.1:0
admin_listen: off
workers: 1
routes:
  - { path: /api, service: api }
  - { path: /, service: web }
services:
  web:
    command: ["${serviceBin}", "--name", "web", "--listen-after", "1500", "--print", "INFO web is booting", "--print", "WARNING: cache is cold"]
    port: ${webPort}
    health: { http: /health, interval: 200ms }
  api:
    command: ["${serviceBin}", "--name", "api", "--print", "ERROR something odd, but running"]
    port: ${apiPort}
    health: { http: /health, interval: 500ms }
`);

let kinfra;
let browser;
let exitCode = 0;
try {
  let ready;
  ({ kinfra, ready } = await startKinfra(dir));
  const base = 'http://' + ready.listen[0];

  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
  const dashboard = await context.newPage();
  const problems = [];
  dashboard.on('pageerror', (e) => problems.push('page error: ' + e.message));

  // 1. The dashboard with its cards.
  await dashboard.goto(base + '/kinfra');
  if ((await dashboard.textContent('h1')).indexOf('KInfra Dashboard') < 0) fail('no dashboard header');
  const badge = (name) => dashboard.locator(`.card[data-service="${name}"] .badge`);
  await waitFor('web to run', async () => (await badge('web').textContent()) === 'running', 20000);
  await waitFor('api to run', async () => (await badge('api').textContent()) === 'running', 20000);
  // Live: through /__stream__ (issue 19), or polling every 2 s while the stream is down.
  await waitFor('the live indicator', async () => /Live • (Streaming|Updates every 2s)/.test(await dashboard.textContent('#live')), 5000);
  await waitFor('log lines on the web card', async () =>
    (await dashboard.locator('.card[data-service="web"] .log-line').count()) >= 2, 5000);
  const warnColour = await dashboard.locator('.card[data-service="web"] .level-warn .lvl').first()
    .evaluate((e) => getComputedStyle(e).color);
  if (warnColour !== 'rgb(245, 158, 11)') fail('WARN lines are not #F59E0B: ' + warnColour);
  await dashboard.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
  console.log('dashboard: cards shown, screenshot saved');

  // 1b. Traffic: the api card shows its request and error rates, from the same counters as /metrics.
  const traffic = dashboard.locator('.card[data-service="api"] .traffic');
  await waitFor('rates to be known', async () => {
    for (let i = 0; i < 10; i++) await (await fetch(base + '/api/items')).text();
    return /^\d+(\.\d)? req\/s$/.test(await traffic.textContent()) && (await traffic.textContent()) !== '0.0 req/s';
  }, 15000);
  const errorsText = await dashboard.textContent('.card[data-service="api"] .errors');
  if (errorsText !== '0.0%') fail('the api card shows errors ' + errorsText);
  console.log('traffic: ' + (await traffic.textContent()) + ', errors ' + errorsText + ' on the api card');

  // 2. Restart: the card goes from starting back to running, without a page reload.
  await dashboard.evaluate(() => { window.__notReloaded = true; });
  await dashboard.click('.card[data-service="web"] button.restart');
  await waitFor('web to be starting', async () => ['starting', 'stopping'].includes(await badge('web').textContent()), 10000);
  await waitFor('web to be starting', async () => (await badge('web').textContent()) === 'starting', 10000);
  await dashboard.screenshot({ path: path.join(artifacts, 'dashboard-restarting.png') });
  await waitFor('web to run again', async () => (await badge('web').textContent()) === 'running', 20000);
  if (!(await dashboard.evaluate(() => window.__notReloaded))) fail('the dashboard reloaded instead of updating in place');
  const restarts = await dashboard.textContent('.card[data-service="web"] .restarts');
  if (restarts !== '1') fail('restart count shows ' + restarts);
  console.log('restart: starting -> running, in place');

  // 3. View Logs opens the full log view in a new tab.
  const [logsPage] = await Promise.all([
    context.waitForEvent('page'),
    dashboard.click('.card[data-service="web"] a.view-logs'),
  ]);
  await logsPage.waitForLoadState();
  await waitFor('log lines in the log view', async () => (await logsPage.locator('.log-line').count()) >= 2, 10000);
  const logsText = await logsPage.textContent('#lines');
  if (!logsText.includes('web is booting')) fail('log view lacks the service output: ' + logsText.slice(0, 200));
  await logsPage.screenshot({ path: path.join(artifacts, 'logs.png') });
  await logsPage.close();
  console.log('view logs: new tab with the log lines');

  // 4. A stopped service's page comes back to the real page by itself.
  await dashboard.click('.card[data-service="web"] button.stop');
  await waitFor('web to stop', async () => (await badge('web').textContent()) === 'stopped', 15000);
  const visitor = await context.newPage();
  const response = await visitor.goto(base + '/hello');
  if (response.status() !== 503) fail('the page of a stopped service answered ' + response.status());
  if (!(await visitor.textContent('body')).includes('web')) fail('the fallback page does not name the service');
  // Stopped on purpose looks stopped: who did it, and no spinner, countdown or promise to retry.
  const visitorText = await visitor.innerText('.panel');
  if (!visitorText.includes('stopped by an operator')) fail('the stopped page does not say an operator stopped it');
  if (await visitor.isVisible('.spinner')) fail('the stopped page shows a spinner');
  if (await visitor.isVisible('#countdown')) fail('the stopped page shows a countdown');
  if ((visitorText.match(/stopped/gi) || []).length > 3) fail('the stopped page says "stopped" too often: ' + visitorText);
  await visitor.screenshot({ path: path.join(artifacts, 'fallback-stopped.png') });
  // …and its card: no stale health line, and kinfra's own 503 above is not the service's error.
  const before = await dashboard.textContent('#updated');
  await waitFor('a dashboard refresh after the visit', async () => (await dashboard.textContent('#updated')) !== before, 8000);
  if (await dashboard.isVisible('.card[data-service="web"] .detail')) fail('the stopped card keeps its health line');
  const webErrors = await dashboard.textContent('.card[data-service="web"] .errors');
  if (/^[1-9]/.test(webErrors) || await dashboard.locator('.card[data-service="web"].failing').count())
    fail('kinfra\'s own 503 for a stopped service counts as its error: ' + webErrors);
  const startButton = dashboard.locator('.card[data-service="web"] button.stop');
  await waitFor('the Start button', async () => (await startButton.textContent()).includes('Start'), 5000);
  await startButton.click();
  await waitFor('the visitor page to become the real page', async () =>
    (await visitor.textContent('body')).includes('hello from web'), 30000);
  console.log('fallback page: returned to the real page once the service was back');

  // 5. Live reload: a broken edit shows a banner with line:column, in place; fixing it (and
  //    adding a service) removes the banner and adds the card, without a page reload.
  const routesPath = path.join(dir, 'routes.yaml');
  const good = fs.readFileSync(routesPath, 'utf8');
  fs.writeFileSync(routesPath, good.replace('workers: 1', 'workers: 1\nbogus_key: 1'));
  await waitFor('the error banner', async () => await dashboard.isVisible('#banner'), 10000);
  const bannerText = await dashboard.textContent('#banner');
  if (!/routes\.yaml:\d+:\d+: unknown key 'bogus_key'/.test(bannerText)) fail('banner without line:col: ' + bannerText);
  await dashboard.screenshot({ path: path.join(artifacts, 'dashboard-config-error.png') });
  const extraPort = await freePort();
  fs.writeFileSync(routesPath, good + `  extra:
    command: ["${serviceBin}", "--name", "extra"]
    port: ${extraPort}
    health: { http: /health, interval: 200ms }
`);
  await waitFor('the banner to go', async () => !(await dashboard.isVisible('#banner')), 10000);
  await waitFor('the new service card', async () => (await badge('extra').count()) === 1 &&
    (await badge('extra').textContent()) === 'running', 20000);
  if (!(await dashboard.evaluate(() => window.__notReloaded))) fail('the dashboard reloaded instead of updating in place');
  if (!(await dashboard.textContent('footer')).includes('file change')) fail('the footer does not say how the config was loaded');
  console.log('live reload: banner on a broken edit, gone after the fix, new card added');

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
