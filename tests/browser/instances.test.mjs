// A service with `instances: 3` and `port: auto` in a real browser: its card lists the three
// processes (pid, port, state, uptime each); Restart rolls them one at a time, start-first — the
// card shows the new process starting beside the one it replaces — and ends with three new pids.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifacts, fail, serviceBin, startKinfra, waitFor, closeAll, launchBrowser } from './support.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinfra-instances-'));
fs.writeFileSync(path.join(dir, 'routes.yaml'), `
listen: 127.0.0.1:0
admin_listen: off
workers: 1
routes:
  - { path: /, service: api }
services:
  api:
    command: ["${serviceBin}", "--name", "api", "--listen-after", "2500"]
    port: auto
    instances: 3
    health: { http: /health, interval: 100ms }
`);

let kinfra;
let browser;
let exitCode = 0;
try {
  let ready;
  ({ kinfra, ready } = await startKinfra(dir));
  const base = 'http://' + ready.listen[0];
  browser = await launchBrowser();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await page.goto(base + '/kinfra');

  const card = page.locator('.card[data-service="api"]');
  const rows = card.locator('.instances tr.instance');
  const pids = async () => (await rows.locator('td.pid').allTextContents()).filter((p) => p !== '-');
  await waitFor('three running instances on the card', async () =>
    (await rows.count()) === 3 && (await card.locator('.instances tr.state-running').count()) === 3, 30000);
  const before = await pids();
  if (new Set(before).size !== 3) fail('three distinct pids expected: ' + before);
  const ports = await rows.locator('td:nth-child(4)').allTextContents();
  if (new Set(ports).size !== 3 || ports.some((p) => !/^\d+$/.test(p))) fail('three ports expected: ' + ports);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-instances.png'), fullPage: true });

  await card.locator('button.restart').click();
  // (Each new process takes 2.5 s to listen: longer than the dashboard's 2 s poll.)
  await waitFor('a new process beside the one it replaces', async () =>
    (await card.locator('.instances td.role').allTextContents()).some((r) => r.startsWith('new')), 10000);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-instances-rolling.png'), fullPage: true });
  if (!(await card.locator('.message').textContent()).includes('Restarting (start-first)'))
    fail('the card does not say it is restarting: ' + (await card.locator('.message').textContent()));
  if ((await card.locator('.badge').textContent()) !== 'running') fail('the service stays running while it rolls');

  await waitFor('three new processes', async () => {
    const now = await pids();
    return now.length === 3 && (await rows.count()) === 3 && now.every((p) => !before.includes(p)) &&
      (await card.locator('.instances tr.state-running').count()) === 3;
  }, 60000);
  await waitFor('the restart to be over', async () =>
    !(await card.locator('.message').textContent()).includes('Restarting'), 10000);
  if (!(await card.locator('.logs').textContent()).includes('restart done')) fail('no "restart done" in the card\'s log');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-instances-restarted.png'), fullPage: true });
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
