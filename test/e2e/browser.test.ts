/**
 * The libraries in a browser: examples/browser (bundled by esbuild for `platform: 'browser'`, so
 * any Node built-in reachable from @lopt/core, tasks, optimizers or estimators fails the bundle)
 * served on 127.0.0.1, loaded in Debian's chromium driven by playwright-core, headless and with
 * its background networking off. The page meta-trains LearnableAdam on quadratics and trains a
 * tfjs-layers model with the pretrained MLPLOpt beside Adam, on the wasm backend; the test waits
 * for both runs, checks that the losses fell and saves a screenshot to a temporary folder
 * (LOPT_BROWSER_SCREENSHOT=<file> copies it there, e.g. docs/images/browser-example.png).
 * Needs `npm run build` (the bundle reads the packages' dist). Skipped, with a message, only where
 * no chromium is installed (`apt-get install -y chromium`; .ci/run installs it). ~20 s on 2 cores.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser } from 'playwright-core';

const ROOT = path.resolve(__dirname, '../..');
// examples/browser/serve.cjs: a CommonJS script, shared by the example's CLI and this test
const { bundle, startServer } = require(path.join(ROOT, 'examples', 'browser', 'serve.cjs')) as {
  bundle(): Promise<{ js: string; metafile: { inputs: Record<string, unknown> } }>;
  startServer(opts?: { port?: number }): Promise<{ url: string; close(): Promise<void> }>;
};

/** LOPT_CHROMIUM, else the first of Debian's chromium paths that exists, else one on PATH. */
function findChromium(): string | null {
  if (process.env.LOPT_CHROMIUM) return process.env.LOPT_CHROMIUM;
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Headless, sandbox off (root in CI containers), and nothing that phones home. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-breakpad',
  '--metrics-recording-only',
  '--no-pings',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--disable-dev-shm-usage',
];

interface PageResults {
  backend?: string;
  meta: number[];
  train: { mlpLOpt: number[]; adam: number[] };
  metaDone: boolean;
  trainDone: boolean;
  done: boolean;
  error?: string;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const chromium = findChromium();
const built = fs.existsSync(path.join(ROOT, 'libs', 'core', 'dist', 'browser.js'));

describe('examples/browser in headless chromium', () => {
  if (!chromium) {
    // .ci/run installs Debian's chromium; a machine without it fails here with what to do
    test('chromium is installed', () => {
      throw new Error('no chromium found: apt-get install -y chromium, or set LOPT_CHROMIUM=<path to a chromium binary>');
    });
    return;
  }

  test('the bundle of the four libraries has no Node built-in and no Node-only module', async () => {
    if (!built) throw new Error('libs/*/dist is not built: run `npm run build:ts` first');
    const { metafile } = await bundle();
    const inputs = Object.keys(metafile.inputs);
    for (const lib of ['core', 'tasks', 'optimizers', 'estimators']) expect(inputs.some((f) => f.includes(`libs/${lib}/dist/`))).toBe(true);
    // The Node entries of core and tasks, and the modules only they export, stay out.
    const nodeOnly = inputs.filter((f) => /libs\/core\/dist\/(node|index|serialization_node|checkpoint|atomic_dir|plugins)\.js$|libs\/tasks\/dist\/(node|index)\.js$/.test(f));
    expect(nodeOnly).toEqual([]);
    expect(inputs.filter((f) => /libs\/tasks\/dist\/datasets\/(fashion_mnist|cifar|idx|language|download)\.js$/.test(f))).toEqual([]);
  }, 60_000);

  test('meta-trains on quadratics and trains a tfjs-layers model with the pretrained MLPLOpt beside Adam; the losses fall', async () => {
    if (!built) throw new Error('libs/*/dist is not built: run `npm run build:ts` first');
    const { chromium: pw } = await import('playwright-core');
    const server = await startServer();
    const shotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-browser-'));
    let browser: Browser | undefined;
    try {
      browser = await pw.launch({ executablePath: chromium, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
      const page = await browser.newPage({ viewport: { width: 1020, height: 420 } });
      const consoleErrors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => consoleErrors.push(e.message));
      // Nothing but the example's own server is asked for.
      const foreign: string[] = [];
      await page.route('**/*', (route) => {
        const u = route.request().url();
        if (u.startsWith(server.url)) return route.continue();
        foreign.push(u);
        return route.abort();
      });
      await page.goto(`${server.url}?backend=wasm`);
      await page.waitForFunction(() => (globalThis as unknown as { loptResults?: PageResults }).loptResults?.done === true, undefined, { timeout: 75_000, polling: 250 });
      const r = (await page.evaluate(() => (globalThis as unknown as { loptResults: PageResults }).loptResults)) as PageResults;
      const shot = path.join(shotDir, 'browser-example.png');
      await page.screenshot({ path: shot });
      if (process.env.LOPT_BROWSER_SCREENSHOT) fs.copyFileSync(shot, process.env.LOPT_BROWSER_SCREENSHOT);
      const status = await page.textContent('#status');

      expect({ error: r.error, consoleErrors }).toEqual({ error: undefined, consoleErrors: [] });
      expect(foreign).toEqual([]);
      expect(r.backend).toBe('wasm');
      expect(r.metaDone && r.trainDone).toBe(true);
      // Meta-training: 60 outer steps; the last ten average well below the first ten.
      expect(r.meta).toHaveLength(60);
      for (const l of r.meta) expect(Number.isFinite(l)).toBe(true);
      expect(mean(r.meta.slice(-10))).toBeLessThan(0.5 * mean(r.meta.slice(0, 10)));
      // Both optimizers lower the training loss; the pretrained MLPLOpt ends lower than Adam(1e-3).
      for (const k of ['mlpLOpt', 'adam'] as const) {
        const curve = r.train[k];
        expect(curve).toHaveLength(150);
        for (const l of curve) expect(Number.isFinite(l)).toBe(true);
        expect(curve[curve.length - 1]).toBeLessThan(curve[0]);
      }
      expect(r.train.mlpLOpt[149]).toBeLessThan(0.6 * r.train.mlpLOpt[0]);
      expect(r.train.mlpLOpt[149]).toBeLessThan(r.train.adam[149]);
      expect(status).toMatch(/meta-training: 60 outer steps/);
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    } finally {
      await browser?.close();
      await server.close();
      fs.rmSync(shotDir, { recursive: true, force: true });
    }
  }, 120_000);
});
