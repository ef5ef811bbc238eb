// Issue 19 in a real browser: the cards' sparklines and the service page's charts draw the known
// traffic's values; the timeline shows a crash and the restart after it; the service page's log
// search finds a line; the dashboard changes within 1 s of a state change through /__stream__,
// and within a poll when the stream is blocked; and screenshots of 1, 5 and 60 services (and a
// phone) for docs/images.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, freePort, serviceBin, startKinfra, waitFor, closeAll, launchBrowser, sleep } from './support.mjs';

/** Writes routes.yaml in a new folder and starts kinfra on it. */
async function kinfraWith(services, routes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-history-'));
  fs.writeFileSync(path.join(dir, 'routes.yaml'),
    `listen: 127.0.0.1:0\nadmin_listen: off\nworkers: 1\nroutes:\n${routes}\nservices:\n${services}`);
  const { kinfra, ready } = await startKinfra(dir);
  return { kinfra, dir, base: 'http://' + ready.listen[0] };
}

async function json(url, init) {
  const res = await fetch(url, init);
  if (!res.ok) fail(url + ' answered ' + res.status);
  return res.json();
}

const maxOf = (list) => list.reduce((m, v) => (typeof v === 'number' && v > m ? v : m), 0);

let browser;
let exitCode = 0;
const running = [];
try {
  browser = await launchBrowser();
  const [webPort, apiPort, idlePort] = [await freePort(), await freePort(), await freePort()];
  const k = await kinfraWith(`  web:
    command: ["${serviceBin}", "--name", "web", "--print", "INFO NEEDLE-4242 found the haystack", "--print", "WARNING: cache is cold", "--keep-alive"]
    port: ${webPort}
    health: { http: /health, interval: 200ms }
  api:
    command: ["${serviceBin}", "--name", "api", "--crash-after", "2500", "--exit-code", "3"]
    port: ${apiPort}
    health: { http: /health, interval: 200ms }
    restart: { policy: on-failure, backoff: 200ms, max_attempts: 3 }
  idle:
    command: ["${serviceBin}", "--name", "idle"]
    port: ${idlePort}
    health: { http: /health, interval: 200ms }
`, '  - { path: /api, service: api }\n  - { path: /idle, service: idle }\n  - { path: /, service: web }');
  running.push(k);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const problems = [];

  // 1. Known traffic: 40 requests to web, counted in its history.
  await waitFor('web to run', async () => (await json(k.base + '/__status__?service=web')).state === 'running', 20000);
  for (let i = 0; i < 40; i++) await (await fetch(k.base + '/hello')).text();
  await waitFor('the 40 requests in the history', async () => {
    const h = await json(k.base + '/__history__?service=web');
    return h.points.reduce((n, p) => n + p.requests, 0) === 40;
  }, 10000);

  // 2. The dashboard: streamed, and the web card's sparkline draws the history's values.
  const dash = await context.newPage();
  dash.on('pageerror', (e) => problems.push('dashboard: ' + e.message));
  await dash.goto(k.base + '/kinfra');
  await waitFor('the stream', async () => (await dash.evaluate(() => document.body.dataset.live)) === 'stream', 10000);
  const spark = dash.locator('.card[data-service="web"] svg.spark-rps');
  await waitFor('the web sparkline', async () => Number(await spark.getAttribute('data-max')) > 0, 15000);
  const all = await json(k.base + '/__history__?all=1&range=15m&step=10');
  const expected = maxOf(all.services.web.requests_per_s);
  await waitFor('the sparkline to match /__history__', async () => {
    const fresh = await json(k.base + '/__history__?all=1&range=15m&step=10');
    return Number(await spark.getAttribute('data-max')) === maxOf(fresh.services.web.requests_per_s);
  }, 15000);
  if (expected < 40 / 20) fail('40 requests within 20 s should peak at 2 req/s or more: ' + expected);
  if ((await spark.locator('path').count()) < 2) fail('the sparkline has no line');
  console.log('sparkline: peak ' + (await spark.getAttribute('data-max')) + ' req/s as /__history__ says');
  // The route's own: the same requests (every one went to route "/").
  const routeSpark = dash.locator('#routes-table svg.spark-route[data-label="/"]');
  await waitFor('the route sparkline', async () => {
    const fresh = await json(k.base + '/__history__?all=1&range=15m&step=10');
    return Number(await routeSpark.getAttribute('data-max')) > 0 &&
      Number(await routeSpark.getAttribute('data-max')) === maxOf(fresh.routes['/'].requests_per_s);
  }, 15000);

  // 3. The timeline: api crashed (code 3) and was restarted after it.
  await waitFor('the crash and the restart in the timeline', async () => {
    const text = await dash.textContent('#timeline');
    return text.includes('exited with code 3') && text.includes('restarted after a failure');
  }, 20000);
  const seqOf = async (text) => Number(await dash.locator('#timeline .event', { hasText: text }).last().getAttribute('data-seq'));
  if (!(await seqOf('exited with code 3') < await seqOf('restarted after a failure'))) fail('the restart is not after the crash');
  console.log('timeline: crash, then restart');

  // 4. Through the stream, a state change shows within 1 s.
  const badge = dash.locator('.card[data-service="idle"] .badge');
  await waitFor('idle to run', async () => (await badge.textContent()) === 'running', 20000);
  const t0 = Date.now();
  await json(k.base + '/__action__/stop/idle', { method: 'POST' });
  await waitFor('idle to leave running', async () => (await badge.textContent()) !== 'running', 3000);
  const took = Date.now() - t0;
  if (took > 1000) fail('the stop showed after ' + took + ' ms (more than 1 s)');
  console.log('stream: the stop showed after ' + took + ' ms');
  await dash.screenshot({ path: path.join(artifacts, 'dashboard-history.png'), fullPage: true });

  // 5. With the stream blocked, the page polls: the start shows within a poll.
  const blocked = await context.newPage();
  await blocked.route('**/__stream__**', (route) => route.abort());
  await blocked.goto(k.base + '/kinfra');
  await waitFor('polling', async () => (await blocked.evaluate(() => document.body.dataset.live)) === 'polling', 10000);
  await json(k.base + '/__action__/start/idle', { method: 'POST' });
  await waitFor('idle to run again (polled)', async () =>
    (await blocked.locator('.card[data-service="idle"] .badge').textContent()) === 'running', 8000);
  if (!(await blocked.textContent('#live')).includes('Updates every 2s')) fail('the indicator does not say it polls');
  await blocked.close();
  console.log('polling: the start showed with the stream blocked');

  // 6. The service page: charts with the same values, hover, events, log search.
  const svc = await context.newPage();
  svc.on('pageerror', (e) => problems.push('service page: ' + e.message));
  await svc.goto(k.base + '/kinfra/service/web');
  const box = svc.locator('#chart-requests .chart-box');
  await waitFor('the requests chart', async () => Number(await box.getAttribute('data-max')) > 0, 10000);
  await waitFor('the chart to match /__history__', async () => {
    const h = await json(k.base + '/__history__?service=web&range=15m&step=5');
    return Number(await box.getAttribute('data-max')) === maxOf(h.points.map((p) => p.requests_per_s)) &&
      Math.abs(Number(await box.getAttribute('data-points')) - h.points.length) <= 2;  // (a point each 5 s)
  }, 10000);
  const latency = svc.locator('#chart-latency .chart-box');
  if (!(Number(await latency.getAttribute('data-max')) > 0)) fail('no latency drawn');
  const chartBox = await box.locator('svg').boundingBox();
  await svc.mouse.move(chartBox.x + chartBox.width * 0.9, chartBox.y + chartBox.height / 2);
  await waitFor('the hover read-out', async () => (await box.locator('.chart-tip').isVisible()) &&
    /requests\/s: /.test(await box.locator('.chart-tip').textContent()), 3000);
  await waitFor('the service events', async () => (await svc.textContent('#timeline')).includes('process started'), 5000);
  await waitFor('log lines', async () => (await svc.locator('#lines .log-line').count()) >= 2, 5000);
  await svc.fill('#log-search', 'needle-4242');
  const shown = svc.locator('#lines .log-line:not([hidden])');
  await waitFor('the search to find one line', async () => (await shown.count()) === 1, 3000);
  if (!(await shown.first().textContent()).includes('NEEDLE-4242 found the haystack')) fail('the search shows the wrong line');
  await svc.fill('#log-search', '');
  await svc.selectOption('#level', 'warn');
  await waitFor('the level filter', async () => (await shown.count()) >= 1 &&
    (await shown.allTextContents()).every((t) => /WARN|ERROR/.test(t)), 3000);
  await svc.selectOption('#level', '');
  await svc.screenshot({ path: path.join(artifacts, 'service-page.png'), fullPage: true });
  // Its range selector asks for 1 min points.
  await svc.click('.ranges button[data-range="1h"]');
  await waitFor('the hour range', async () => (await svc.getAttribute('.ranges button[data-range="1h"]', 'aria-pressed')) === 'true', 3000);
  console.log('service page: charts match, hover read-out, events, log search and level filter');

  // 7. The list view, the filter and the sort.
  await dash.click('#view-list');
  await waitFor('the list', async () => (await dash.locator('#service-list tbody tr:not([hidden])').count()) === 3, 3000);
  await dash.selectOption('#filter-state', 'running');
  await waitFor('the filter', async () => (await dash.locator('#service-list tbody tr:not([hidden])').count()) >= 1, 3000);
  await dash.selectOption('#filter-state', '');
  await dash.selectOption('#sort', 'name');
  const order = await dash.locator('#service-list tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.service));
  if (order.join() !== 'api,idle,web') fail('sorted by name: ' + order.join());
  await dash.click('#view-cards');
  if (problems.length) fail(problems.join('\n'));
  await context.close();

  // 8. Screenshots: 1, 5 and 60 services; the 5 on a phone too.
  for (const count of [1, 5, 60]) {
    let services = '', routes = '';
    for (let i = 0; i < count; i++) {
      const name = count === 1 ? 'app' : ['web', 'api', 'worker', 'auth', 'search'][i] || 'svc-' + String(i).padStart(2, '0');
      const port = await freePort();
      // A few that fail (a port nobody listens on), the others run.
      const broken = count > 1 && (i === 3 || i % 17 === 9);
      services += broken
        ? `  ${name}:\n    url: http://127.0.0.1:${port}\n    health: { tcp: true, interval: 500ms }\n`
        : `  ${name}:\n    command: ["${serviceBin}", "--name", "${name}", "--print", "INFO ${name} ready"]\n    port: ${port}\n    health: { http: /health, interval: 500ms }\n`;
      routes += `  - { path: /${name}, service: ${name} }\n`;
    }
    const s = await kinfraWith(services, routes.trimEnd());
    running.push(s);
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(s.base + '/kinfra');
    await waitFor('the services to settle', async () => {
      const doc = await json(s.base + '/__status__');
      return Object.values(doc.services).every((x) => x.state !== 'starting');
    }, 30000);
    for (let i = 0; i < 30; i++) await (await fetch(s.base + '/' + (count === 1 ? 'app' : 'web'))).text();
    await sleep(2500);  // (one more sample and one more sparkline refresh)
    await page.reload();
    await waitFor('the cards', async () => (await page.locator('#cards .card').count()) === count, 10000);
    if (count === 60 && (await page.isVisible('#cards'))) fail('60 services should open in the list view');
    await sleep(1500);
    await page.screenshot({ path: path.join(artifacts, `dashboard-${count}.png`), fullPage: count < 60 });
    // On a phone: no sideways scrolling (the cards of 5, the list of 60); the 5 are a screenshot.
    if (count === 5 || count === 60) {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
      const p = await phone.newPage();
      await p.goto(s.base + '/kinfra');
      const rows = count === 5 ? '#cards .card' : '.svc-row';
      await waitFor('the services on a phone', async () => (await p.locator(rows).count()) === count, 10000);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 1) fail(`the phone layout of ${count} services is ${overflow} px wider than the screen`);
      if (count === 5) await p.screenshot({ path: path.join(artifacts, 'dashboard-phone.png') });
      await phone.close();
    }
    if (count === 5) {
      // Every service down: the dashboard and a service page still draw, with their states.
      const doc = await json(s.base + '/__status__');
      for (const name of Object.keys(doc.services))
        await fetch(s.base + '/__action__/stop/' + name, { method: 'POST' });
      await waitFor('every service down', async () => {
        const now = await json(s.base + '/__status__');
        return Object.values(now.services).every((x) => x.state !== 'running' && x.state !== 'stopping');
      }, 20000);
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.reload();
      await waitFor('five cards, none running', async () =>
        (await page.locator('#cards .card').count()) === 5 && (await page.locator('#cards .card.state-running').count()) === 0, 10000);
      await page.goto(s.base + '/kinfra/service/web');
      await waitFor('the service page of a stopped service', async () =>
        ((await page.textContent('body')) || '').toLowerCase().includes('stopped'), 10000);
      if (errors.length) fail('script errors with every service down: ' + errors.join('; '));
    }
    await ctx.close();
    await closeAll(null, s.kinfra);
    console.log('screenshot: ' + count + (count === 1 ? ' service' : ' services'));
  }
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e.message);
  exitCode = 1;
} finally {
  await closeAll(browser, null);
  for (const r of running) {
    await closeAll(null, r.kinfra);
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
}
process.exit(exitCode);
