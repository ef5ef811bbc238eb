// What the browser tests share: where the binaries are, where screenshots go, and small waits.
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const kinfraBin = process.env.KINFRA_BINARY;
export const serviceBin = process.env.KINFRA_TEST_SERVICE;
export const artifacts = process.env.KINFRA_ARTIFACTS || path.join(os.tmpdir(), 'kinfra-artifacts');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(artifacts, { recursive: true });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function fail(message) {
  throw new Error(message);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `fn` every 100 ms until it returns something truthy (returned) or `timeoutMs` passes. */
export async function waitFor(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  fail(`timed out waiting for ${what} (last: ${last})`);
}

/**
 * Runs kinfra on `dir`/routes.yaml (its output goes to ours) and waits until it listens.
 * @return the child process and the ready file's contents ({pid, listen: [...], admin: [...]})
 */
export async function startKinfra(dir) {
  const readyFile = path.join(dir, 'ready.json');
  const kinfra = spawn(kinfraBin, ['run', path.join(dir, 'routes.yaml'), '--ready-file', readyFile],
    { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  let ended = null;  // why kinfra is gone, if it is
  kinfra.on('error', (e) => { ended = 'could not start ' + kinfraBin + ': ' + e.message; });
  kinfra.on('exit', (code, signal) => { ended = ended || `exited (code ${code}, signal ${signal})`; });
  const end = Date.now() + 15000;
  while (Date.now() < end && !ended) {
    const text = fs.existsSync(readyFile) && fs.readFileSync(readyFile, 'utf8');
    if (text) return { kinfra, ready: JSON.parse(text) };
    await sleep(100);
  }
  if (!ended) {
    // It never listened: it goes (SIGKILL if it does not within 5 s), and the test fails.
    const exited = new Promise((r) => kinfra.once('exit', r));
    kinfra.kill('SIGTERM');
    const timer = setTimeout(() => kinfra.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  fail('kinfra did not start listening: ' + (ended || 'no ready file within 15 s'));
}

/** Debian's chromium, headless, with `extraArgs`. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs],
  });
}

/** The end of every browser test: the browser closed, kinfra stopped (SIGTERM, waited for). */
export async function closeAll(browser, kinfra) {
  if (browser) await browser.close().catch(() => {});
  if (kinfra && kinfra.exitCode === null && kinfra.signalCode === null) {
    const exited = new Promise((r) => kinfra.once('exit', r));
    kinfra.kill('SIGTERM');
    await exited;
  }
}
