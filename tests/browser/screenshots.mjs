// Makes the screenshots in docs/images (not a test: run it by hand after a visible change to the
// dashboard, about ten minutes):
//   KINFRA_BINARY=build/test/bin/kinfra KINFRA_TEST_SERVICE=build/test/tests/kinfra-test-service \
//   NODE_PATH=tests/browser/node_modules KINFRA_ARTIFACTS=docs/images node tests/browser/screenshots.mjs
// Each dashboard gets a few minutes of varied traffic first (slow answers, a crashing service's
// 503s), so that its sparklines, charts and timeline have something to show.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, freePort, serviceBin, startKinfra, waitFor, closeAll, launchBrowser, sleep } from './support.mjs';

const names5 = ['web', 'api', 'worker', 'auth', 'search'];

async function setUp(count) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-shots-'));
  let services = '', routes = '';
  for (let i = 0; i < count; i++) {
    const name = count === 1 ? 'app' : names5[i] || 'svc-' + String(i).padStart(2, '0');
    const port = await freePort();
    const broken = count > 1 && (i === 3 || i % 17 === 9);
    const crashing = count > 1 && i === 2;
    if (broken) {
      services += `  ${name}:\n    url: http://127.0.0.1:${port}\n    health: { tcp: true, interval: 1s }\n`;
    } else {
      const extra = crashing ? ', "--crash-after", "45000", "--exit-code", "3"' : '';
      services += `  ${name}:\n    command: ["${serviceBin}", "--name", "${name}", "--keep-alive", "--print", "INFO ${name} ready"${extra}]\n` +
        `    port: ${port}\n    health: { http: /health, interval: 1s }\n` + (crashing ? '    restart: { policy: always, backoff: 3s }\n' : '');
    }
    routes += `  - { path: /${name}, service: ${name}, strip_prefix: true }\n`;
  }
  fs.writeFileSync(path.join(dir, 'routes.yaml'),
    `listen: 127.0.0.1:0\nadmin_listen: off\nworkers: 1\nroutes:\n${routes}services:\n${services}`);
  const { kinfra, ready } = await startKinfra(dir);
  return { kinfra, dir, base: 'http://' + ready.listen[0] };
}

/** `seconds` of traffic: a wave of requests to the first services, some of them slow. */
async function traffic(base, targets, seconds) {
  const end = Date.now() + seconds * 1000;
  let tick = 0;
  while (Date.now() < end) {
    const wave = 3 + Math.round(4 * (1 + Math.sin(tick / 15)));
    const jobs = [];
    for (let i = 0; i < wave; i++) {
      const t = targets[i % targets.length];
      const slow = Math.random() < 0.3 ? '/slow/' + Math.round(5 + Math.random() * 80) : '/items';
      jobs.push(fetch(base + '/' + t + slow).then((r) => r.text()).catch(() => {}));
    }
    await Promise.all(jobs);
    tick++;
    await sleep(250);
  }
}

const browser = await launchBrowser();
try {
  for (const [count, seconds] of [[5, 360], [1, 60], [60, 90]]) {
    const s = await setUp(count);
    const targets = count === 1 ? ['app'] : ['web', 'api', 'worker', 'search'];
    await traffic(s.base, targets, seconds);
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(s.base + '/kinfra');
    await waitFor('the cards', async () => (await page.locator('#cards .card').count()) === count, 10000);
    await sleep(2500);
    await page.screenshot({ path: path.join(artifacts, `dashboard-${count}.png`), fullPage: count < 60 });
    if (count === 5) {
      await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
      const svc = await ctx.newPage();
      await svc.goto(s.base + '/kinfra/service/web');
      await sleep(2500);
      await svc.screenshot({ path: path.join(artifacts, 'service-page.png'), fullPage: true });
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
      const p = await phone.newPage();
      await p.goto(s.base + '/kinfra');
      await sleep(2500);
      await p.screenshot({ path: path.join(artifacts, 'dashboard-phone.png') });
      await phone.close();
    }
    await ctx.close();
    await closeAll(null, s.kinfra);
    fs.rmSync(s.dir, { recursive: true, force: true });
    console.log('screenshots of ' + count);
  }
} finally {
  await closeAll(browser, null);
}
