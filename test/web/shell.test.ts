import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { hasChromium, launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, jpeg, startApi, waitForJob, type ApiHarness } from '../support/api.js';
import { buildDashboard } from '../support/dashboard.js';
import { sqliteTarget } from '../support/stores.js';

// Page expressions are strings: this file is type-checked without the DOM's types.
const SCREENSHOTS = path.join(import.meta.dirname, '../../test-output/screenshots');

/**
 * The dashboard as a user sees it: Chromium against a real server (API, worker, web/dist) on loopback. Pages
 * are found by role and name, as a screen reader finds them; what the page claims is checked through the API.
 */
describe.skipIf(!hasChromium)('the dashboard in Chromium', () => {
  let browser: Browser;
  let api: ApiHarness;
  /** Script errors and console errors (CSP refusals among them) on any page, but for refused requests: none expected. */
  const problems: string[] = [];

  beforeAll(async () => {
    await buildDashboard();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    api = await startApi(sqliteTarget);
    await api.startWorker();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  const open = async (width = 1280) => {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on(
      'console',
      (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(m.text()),
    );
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${api.base}/`);
    return page;
  };
  const signIn = async (page: Page, key: string) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  const shoot = (page: Page, name: string) =>
    page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const submitTransform = async (key: string, server = api) => {
    const form = new FormData();
    form.append('type', 'transform');
    form.append('options', JSON.stringify({ format: 'png' }));
    form.append('image', new Blob([await jpeg(64, 48)], { type: 'image/jpeg' }), 'p.jpg');
    const res = await server.call('POST', '/v1/jobs', { key, form });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.id as string;
  };
  const submitNoop = async (key: string) => {
    const res = await api.call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.id as string;
  };

  it('refuses a wrong key with the server’s own explanation, keeping nothing', async () => {
    const page = await open();
    await signIn(page, 'not-a-real-key');
    const expected = (await api.call('GET', '/v1/whoami', { key: 'not-a-real-key' })).body;
    expect(expected.status).toBe(401);
    await expect.poll(() => page.getByRole('alert').textContent()).toBe(expected.detail);
    expect(await page.getByRole('link', { name: 'Overview' }).count()).toBe(0);
    expect(await page.evaluate('[sessionStorage.length, localStorage.length, document.cookie]')).toEqual([0, 0, '']);
    await shoot(page, 'sign-in-refused');
    await page.close();
  });

  it('shows a vendor only its own jobs, and no Vendors page', async () => {
    const mine = await api.vendor(`mine-${Date.now()}`);
    const other = await api.vendor(`other-${Date.now()}`);
    const ids = [await submitNoop(mine.key), await submitNoop(mine.key)];
    const theirs = [
      await submitTransform(other.key),
      await submitTransform(other.key),
      await submitTransform(other.key),
    ];
    for (const id of ids) await waitForJob(api, mine.key, id, ['succeeded']);
    for (const id of theirs) await waitForJob(api, other.key, id, ['succeeded']);

    const page = await open();
    const eventStreams: string[] = [];
    page.on(
      'request',
      (r) => new URL(r.url()).pathname === '/v1/events' && eventStreams.push(r.headers().authorization ?? ''),
    );
    await signIn(page, mine.key);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect.poll(() => nav.getByRole('link').allTextContents()).toEqual(['Overview', 'Jobs', 'Upload', 'Assets']);
    const byType = page.getByRole('table', { name: 'By job type' });
    await expect.poll(() => byType.getByRole('row').allTextContents()).toHaveLength(2); // header + noop
    expect(await byType.getByRole('rowheader').allTextContents()).toEqual(['noop']);
    const totals = await page.getByRole('list', { name: 'Jobs by state' }).locator('[data-state]').allTextContents();
    expect(totals).toEqual(['0', '0', '0', '2', '0', '0']); // queued delayed running succeeded failed cancelled
    const text = (await page.textContent('body')) ?? '';
    expect(text).not.toContain('transform');
    expect(text).not.toContain(other.vendor.name as string);
    expect(await page.getByRole('table', { name: 'By vendor' }).count()).toBe(0);
    // The key lives in this tab's sessionStorage only.
    expect(await page.evaluate('[Object.values(sessionStorage), localStorage.length, document.cookie]')).toEqual([
      [mine.key],
      0,
      '',
    ]);
    await shoot(page, 'overview-vendor');
    // The counts follow the vendor's live events, the key in a header (never in a URL).
    expect(eventStreams.length).toBeGreaterThanOrEqual(1);
    expect(eventStreams[0]).toBe(`Bearer ${mine.key}`);

    // Reachable by keyboard: Tab to the Jobs link, Enter follows it.
    await page.getByRole('link', { name: 'Overview' }).focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).pathname).toBe('/jobs');
    await shoot(page, 'jobs');
    await page.getByRole('link', { name: 'Upload' }).click();
    await shoot(page, 'upload');

    // /vendors typed by hand is no way round the missing link.
    await page.goto(`${api.base}/vendors`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/');
    expect(await page.getByRole('heading', { name: 'Vendors' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => page.getByLabel('API key').count()).toBe(1);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);

    // A key revoked while signed in: the next refresh is refused, and the tab is signed out.
    await signIn(page, other.key);
    await expect.poll(() => page.getByRole('heading', { name: 'Overview' }).count()).toBe(1);
    const keyId = (await api.call('GET', `/v1/vendors/${other.id}/keys`, { key: ADMIN_KEY })).body.keys[0].id;
    expect((await api.call('DELETE', `/v1/vendors/${other.id}/keys/${keyId}`, { key: ADMIN_KEY })).status).toBe(200);
    await expect
      .poll(() => page.getByRole('status').textContent(), { timeout: 30_000 })
      .toMatch(/no longer accepts this key/);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.close();
  });

  it('lets the admin pause a type (its jobs stay queued) and resume it (they run)', async () => {
    const { key } = await api.vendor();
    const page = await open();
    await signIn(page, ADMIN_KEY);
    await page.getByRole('link', { name: 'Vendors' }).click();
    await page.getByRole('button', { name: 'Pause noop' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Resume noop' }).count()).toBe(1);
    const types = (await api.call('GET', '/v1/job-types', { key: ADMIN_KEY })).body.types;
    expect(types).toContainEqual(expect.objectContaining({ type: 'noop', paused: true }));

    const held = await submitNoop(key);
    // A later job of another type runs through the same worker: it was claiming, and passed the paused one over.
    await waitForJob(api, key, await submitTransform(key), ['succeeded']);
    expect((await api.call('GET', `/v1/jobs/${held}`, { key })).body.state).toBe('queued');
    await shoot(page, 'vendors');

    await page.getByRole('button', { name: 'Resume noop' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Pause noop' }).count()).toBe(1);
    await waitForJob(api, key, held, ['succeeded']);
    await page.close();
  });

  it('lets the admin create a vendor (its key shown once), edit, suspend, issue and revoke keys, and limit a type', async () => {
    const page = await open();
    await signIn(page, ADMIN_KEY);
    await page.getByRole('link', { name: 'Vendors' }).click();
    const name = `dash-${Date.now()}`;
    await page.getByRole('textbox', { name: 'Name' }).fill(name);
    await page.getByRole('button', { name: 'Create vendor' }).click();
    const shown = page.getByLabel(`API key for ${name}`);
    await expect.poll(() => shown.count()).toBe(1);
    const apiKey = (await shown.textContent())!;
    const me = await api.call('GET', '/v1/vendors/me', { key: apiKey });
    expect([me.status, me.body.vendor.name]).toEqual([200, name]);

    await page.getByRole('spinbutton', { name: 'Weight' }).fill('3');
    await page.getByRole('button', { name: 'Save vendor' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Saved.' }).count()).toBe(1);
    const vendor = (await api.call('GET', `/v1/vendors/${me.body.vendor.id}`, { key: ADMIN_KEY })).body;
    expect(vendor.weight).toBe(3);

    // Another key, shown once; the first revoked: it stops working, the new one works.
    await page.getByRole('button', { name: 'Issue key' }).click();
    const second = page.getByLabel(`New API key for ${name}`);
    await expect.poll(() => second.count()).toBe(1);
    const secondKey = (await second.textContent())!;
    expect((await api.call('GET', '/v1/vendors/me', { key: secondKey })).status).toBe(200);
    await page.getByRole('button', { name: `Revoke key ${apiKey.slice(0, 12)}` }).click(); // keys are listed by their first 12 characters
    await expect.poll(async () => (await api.call('GET', '/v1/vendors/me', { key: apiKey })).status).toBe(401);
    expect((await api.call('GET', '/v1/vendors/me', { key: secondKey })).status).toBe(200);

    // Suspended, and a global running cap and rate limit for a type.
    await page.getByRole('checkbox', { name: 'Suspended' }).check();
    await page.getByRole('textbox', { name: 'Requests rate' }).fill('500/1m');
    await page.getByRole('button', { name: 'Save vendor' }).click();
    await expect
      .poll(async () => (await api.call('GET', `/v1/vendors/${me.body.vendor.id}`, { key: ADMIN_KEY })).body)
      .toMatchObject({ status: 'suspended', rateLimits: { requests: { limit: 500, windowMs: 60_000 } } });
    await page.getByRole('spinbutton', { name: 'Global running cap for transform' }).fill('3');
    await page.getByRole('textbox', { name: 'Global rate limit for transform' }).fill('100/1h');
    await page.getByRole('button', { name: 'Save limits for transform' }).click();
    await expect
      .poll(async () => (await api.call('GET', '/v1/job-types', { key: ADMIN_KEY })).body.types)
      .toContainEqual({
        type: 'transform',
        paused: false,
        maxRunning: 3,
        rateLimit: { limit: 100, windowMs: 3_600_000 },
      });
    await shoot(page, 'vendor-edit');
    await api.call('PUT', '/v1/job-types/transform', { key: ADMIN_KEY, json: { maxRunning: null, rateLimit: null } });

    // Shown once: after leaving the page the key is nowhere on it.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('link', { name: 'Vendors' }).click();
    await page.getByRole('button', { name: `Edit ${name}` }).click();
    await expect.poll(() => page.getByRole('heading', { name: `Vendor ${name}` }).count()).toBe(1);
    expect(await page.textContent('body')).not.toContain(apiKey);
    await page.close();
  });

  it('shows the admin every vendor, the last hour and the workers, readable at 375 px', async () => {
    const page = await open();
    await signIn(page, ADMIN_KEY);
    const workers = page.getByRole('table', { name: 'Workers' });
    await expect.poll(() => workers.getByRole('row').count()).toBeGreaterThanOrEqual(2);
    expect(await workers.textContent()).toMatch(/noop \d+/);
    const vendorRows = await page.getByRole('table', { name: 'By vendor' }).getByRole('rowheader').allTextContents();
    expect(vendorRows.length).toBeGreaterThanOrEqual(2);
    expect(vendorRows.filter((name) => /^[0-9A-Z]{26}$/.test(name))).toEqual([]); // names, not ids
    expect(await page.getByRole('img', { name: /chart$/ }).count()).toBe(2);
    await shoot(page, 'overview-admin');

    await page.setViewportSize({ width: 375, height: 800 });
    // Nothing wider than the screen but the tables, which scroll inside their own box. The charts follow the new
    // width when their resize observer fires, after the viewport change: wait for the layout, not a fixed time.
    await expect
      .poll(() => page.evaluate<number>('document.documentElement.scrollWidth'), { timeout: 10_000 })
      .toBeLessThanOrEqual(375);
    await shoot(page, 'overview-375');
    await page.close();
    expect(problems).toEqual([]);
  });

  /** The README's picture (PIXQ_DOCS_SCREENSHOT=1): a fresh server with a working day in small. */
  it.runIf(process.env.PIXQ_DOCS_SCREENSHOT)('takes the overview for docs/images', async () => {
    const fresh = await startApi(sqliteTarget);
    try {
      await fresh.startWorker();
      for (const [name, count] of [
        ['acme-shoes', 14],
        ['northwind-photo', 9],
        ['idcards-eu', 5],
      ] as const) {
        const { key } = await fresh.vendor(name);
        const jobs = await Promise.all(
          Array.from({ length: count }, (_, i) =>
            fresh.call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 20 + ((i * 37) % 180) } } }),
          ),
        );
        for (const res of jobs) await waitForJob(fresh, key, res.body.id, ['succeeded']);
        for (let i = 0; i < count / 3; i++)
          await waitForJob(fresh, key, await submitTransform(key, fresh), ['succeeded']);
        const long = await fresh.call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 600_000 } } });
        if (name === 'idcards-eu')
          await waitForJob(fresh, key, long.body.id, ['running']).then(() =>
            fresh.call('POST', `/v1/jobs/${long.body.id}/cancel`, { key }),
          );
      }
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${fresh.base}/`);
      await signIn(page, ADMIN_KEY);
      await expect.poll(async () => Number(await page.locator('[data-state="running"]').textContent())).toBe(2);
      // The worker reports its running jobs with its next heartbeat; the page shows it at its next refresh.
      const workerRunning = page.getByRole('table', { name: 'Workers' }).getByRole('cell').nth(1);
      await expect.poll(() => workerRunning.textContent(), { timeout: 40_000 }).toBe('2');
      await page.screenshot({
        path: path.join(import.meta.dirname, '../../docs/images/dashboard-overview.png'),
        fullPage: true,
      });
      await page.close();
    } finally {
      await fresh.close();
    }
  });
});
