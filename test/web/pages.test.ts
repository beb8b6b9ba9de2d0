import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { hasChromium, launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../support/dashboard.js';
import { ADMIN_KEY, imageServer, jpeg, startApi, waitForJob, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { sqliteTarget, tempDir } from '../support/stores.js';
import { PORTRAITS, portraitJpeg, UPSCALE } from '../support/portraits.js';

const SCREENSHOTS = path.resolve('test-output/screenshots');

/** A loopback server that answers 404 to everything: URL inputs that fail for certain, on the first attempt. */
async function missingImages() {
  const server = http.createServer((_req, res) =>
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such image'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: (name: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}.jpg`,
    close: () => server.close(),
  };
}

/** The state word each upload row shows, as the page changes it (a MutationObserver, so no state is missed). */
function recordUploadStates(tab: Page) {
  return tab.evaluate(() => {
    const g = globalThis as unknown as { seen: Record<string, string[]>; document: any; MutationObserver: any };
    g.seen = {};
    const look = () => {
      for (const row of g.document.querySelectorAll('.upload-file')) {
        const name = row.getAttribute('data-file');
        const word = row.querySelector('.state')?.textContent ?? '';
        const seen = (g.seen[name] ??= []);
        if (seen.at(-1) !== word) seen.push(word);
      }
    };
    new g.MutationObserver(look).observe(g.document.body, { subtree: true, childList: true, characterData: true });
    look();
  });
}

describe.skipIf(!hasChromium)('dashboard pages in Chromium against a real server', () => {
  let browser: Browser;
  let api: ApiHarness;
  let missing: Awaited<ReturnType<typeof missingImages>>;
  let vendor: { id: string; key: string };
  let other: { id: string; key: string };

  const admin = (action: 'pause' | 'resume', type: string) =>
    api.call('POST', `/v1/job-types/${type}/${action}`, { key: ADMIN_KEY }).then((res) => expect(res.status).toBe(200));
  const submit = async (key: string, body: Record<string, unknown>) => {
    const res = await api.call('POST', '/v1/jobs', { key, json: body });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.id as string;
  };
  const outputOf = async (key: string, id: string) => {
    const res = await api.call('GET', `/v1/jobs/${id}/output`, { key });
    expect(res.status).toBe(200);
    return res.raw;
  };

  /** A tab signed in with `key` on the page at `href` (any page asks for the key first, then shows itself). */
  async function signedIn(key: string, href: string): Promise<Page> {
    const tab = await browser.newPage({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
    tab.on('pageerror', (error) => console.error('page error:', error));
    await tab.goto(api.base + href);
    await tab.getByLabel('API key').fill(key);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('navigation', { name: 'Main' }).waitFor();
    return tab;
  }
  const jobRows = (tab: Page) => tab.getByRole('table', { name: 'Jobs' }).locator('tbody tr');
  const screenshot = (tab: Page, name: string) =>
    tab.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    await buildDashboard();
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    missing = await missingImages();
    const modelsDir = tempDir();
    api = await startApi(sqliteTarget, {
      PIXQ_URL_ALLOWLIST: '127.0.0.1',
      PIXQ_MODELS_DIR: modelsDir,
      PIXQ_MODEL_DOWNLOAD: 'false',
    });
    await api.startWorker();
    vendor = await api.vendor('acme-photos');
    other = await api.vendor('other-shop');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    missing?.close();
  });

  it('uploads three photos with product-cutout-white, follows each live to succeeded, downloads one and a zip of all', async () => {
    // Real photos (cut off the sample sheet, as a phone would upload them) through the preset's real default model.
    const photos = await Promise.all(
      PORTRAITS.slice(0, 3).map(async (portrait, i) => ({
        name: `photo-${i + 1}.jpg`,
        mimeType: 'image/jpeg',
        buffer: await portraitJpeg(portrait),
      })),
    );
    // Paused, the jobs wait as queued until the test lets them run: both words are on screen for certain.
    await admin('pause', 'remove-background');
    const tab = await signedIn(vendor.key, '/upload');
    await tab.getByLabel('Operation').selectOption('product-cutout-white');
    await tab.getByLabel('Images').setInputFiles(photos);
    await recordUploadStates(tab);
    await tab.getByRole('button', { name: 'Process' }).click();
    const row = (name: string) => tab.locator(`.upload-file[data-file="${name}"]`);
    for (const { name } of photos) await row(name).locator('.state', { hasText: 'queued' }).waitFor();
    await admin('resume', 'remove-background');
    for (const { name } of photos)
      await row(name).getByRole('link', { name: 'Download' }).waitFor({ timeout: 240_000 });

    const seen = await tab.evaluate(() => (globalThis as unknown as { seen: Record<string, string[]> }).seen);
    for (const { name } of photos)
      expect(seen[name].filter((w) => ['queued', 'running', 'succeeded'].includes(w))).toEqual([
        'queued',
        'running',
        'succeeded',
      ]);

    const ids = await Promise.all(
      photos.map(async ({ name }) => (await row(name).locator('.job-link').textContent())!),
    );
    const outputs = await Promise.all(ids.map((id) => outputOf(vendor.key, id)));
    for (const id of ids)
      expect((await api.call('GET', `/v1/jobs/${id}`, { key: vendor.key })).body).toMatchObject({
        type: 'remove-background',
        template: 'product-cutout-white',
      });
    const [one] = await Promise.all([
      tab.waitForEvent('download'),
      row(photos[0].name).getByRole('link', { name: 'Download' }).click(),
    ]);
    expect(one.suggestedFilename()).toBe('photo-1.png');
    expect(fs.readFileSync(await one.path())).toEqual(outputs[0]);

    const [zip] = await Promise.all([
      tab.waitForEvent('download'),
      tab.getByRole('button', { name: 'Download all' }).click(),
    ]);
    const entries = unzipSync(fs.readFileSync(await zip.path()));
    expect(Object.keys(entries).sort()).toEqual(['photo-1.png', 'photo-2.png', 'photo-3.png']);
    photos.forEach(({ name }, i) => expect(Buffer.from(entries[name.replace('.jpg', '.png')])).toEqual(outputs[i]));

    await screenshot(tab, 'upload');

    const inputs: Buffer[] = [];
    await tab.route(`**/v1/jobs/${ids[0]}/input`, async (route) => {
      const answer = await route.fetch();
      inputs.push(await answer.body());
      await route.fulfill({ response: answer });
    });
    await row(photos[0].name).locator('.job-link').click();
    await tab.waitForURL(`${api.base}/jobs/${ids[0]}`);
    // Input and output side by side, both decoded; the input is the very file uploaded.
    for (const alt of ['input', 'output 1']) {
      const image = tab.getByRole('img', { name: alt, exact: true });
      await waitUntil(
        async () => (await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) > 0,
        20_000,
        `the ${alt} image to load`,
      );
    }
    // The page's CSP keeps its blob: URL from being fetched again, so the bytes are those of the answer it read.
    // (Every read of the page happens twice on opening it, the job's too: each answer is checked.)
    expect(inputs.length).toBeGreaterThan(0);
    for (const bytes of inputs) expect(bytes).toEqual(photos[0].buffer);
    expect(
      await tab
        .getByRole('img', { name: 'input', exact: true })
        .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
    ).toBe(PORTRAITS[0].sheet.width * UPSCALE);
    await expect(tab.locator('.job-summary .state').textContent()).resolves.toBe('succeeded');
    await expect(tab.locator('pre.json').first().textContent()).resolves.toContain('"background": "#ffffff"');
    await screenshot(tab, 'job-detail');
    await tab.close();
  }, 300_000);

  it('filters jobs by a metadata value (a linkable URL) and shows only the matching ones, live', async () => {
    const shown = [
      await submit(vendor.key, { type: 'noop', metadata: { recordId: '123' } }),
      await submit(vendor.key, { type: 'noop', metadata: { recordId: 123, shop: 'eu' } }),
    ];
    await submit(vendor.key, { type: 'noop', metadata: { recordId: '456' } });
    await submit(other.key, { type: 'noop', metadata: { recordId: '123' } });
    const tab = await signedIn(vendor.key, '/jobs');
    await tab.getByLabel('Metadata').fill('recordId=123');
    await tab.getByRole('button', { name: 'Filter' }).click();
    await tab.waitForURL((url) => url.searchParams.get('metadata') === 'recordId=123');
    const rows = jobRows(tab);
    await waitUntil(async () => (await rows.count()) === shown.length, 20_000, 'the filtered list');
    expect(
      (
        await rows.evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { job: string } }).dataset.job))
      ).sort(),
    ).toEqual([...shown].sort());

    // A job submitted now that matches appears without a reload.
    const late = await submit(vendor.key, { type: 'noop', metadata: { recordId: '123' } });
    await tab.locator(`tr[data-job="${late}"]`).waitFor();
    await screenshot(tab, 'jobs');
    await tab.close();
  });

  it('retries every failed job matching a filter after showing how many match, and shows them queued again', async () => {
    const failing = await Promise.all(
      ['a', 'b'].map((n) =>
        submit(vendor.key, {
          type: 'transform',
          input: { url: missing.url(n) },
          maxAttempts: 1,
          metadata: { run: 'retry-test' },
        }),
      ),
    );
    const codes = [];
    for (const id of failing) codes.push((await waitForJob(api, vendor.key, id, ['failed'])).error.code as string);
    // The detail names the failed attempt's code and message.
    const tab = await signedIn(vendor.key, `/jobs/${failing[0]}`);
    await tab.getByRole('table', { name: 'Attempts' }).getByRole('cell', { name: codes[0] }).waitFor();
    await screenshot(tab, 'job-detail-failed');
    await tab.goto(`${api.base}/jobs?state=failed&metadata=run%3Dretry-test`);
    await waitUntil(async () => (await jobRows(tab).count()) === 2, 20_000, 'the two failed jobs');
    // Held as queued once retried: the words on screen cannot race the worker.
    await admin('pause', 'transform');
    try {
      await tab.goto(`${api.base}/jobs?metadata=run%3Dretry-test`);
      await tab.getByRole('button', { name: 'Retry all matching' }).click();
      await tab.getByText('2 jobs match this filter').waitFor();
      await tab.getByRole('button', { name: 'Confirm' }).click();
      await tab.getByText('matched 2, changed 2').waitFor();
      for (const id of failing) await tab.locator(`tr[data-job="${id}"] .state`, { hasText: 'queued' }).waitFor();
      for (const id of failing)
        expect((await api.call('GET', `/v1/jobs/${id}`, { key: vendor.key })).body.state).toBe('queued');
      await screenshot(tab, 'jobs-retried');
    } finally {
      await admin('resume', 'transform');
    }
    await tab.close();
  });

  it('shows a job that failed once then succeeded with two attempts, the first with its error, from the stored events', async () => {
    const flaky = await imageServer(await jpeg(64, 48), { failFirst: true });
    try {
      const id = await submit(vendor.key, {
        type: 'transform',
        input: { url: flaky.url('/flaky.jpg') },
        maxAttempts: 2,
      });
      expect(await waitForJob(api, vendor.key, id, ['succeeded', 'failed'])).toMatchObject({
        state: 'succeeded',
        attempts: 2,
      });
      // Opened after the job finished: what the page shows comes from the stored events, not live ones.
      const tab = await signedIn(vendor.key, `/jobs/${id}`);
      const rows = tab.getByRole('table', { name: 'Attempts' }).locator('tbody tr');
      await waitUntil(async () => (await rows.count()) === 2, 20_000, 'two attempts');
      const cells = await rows.evaluateAll((trs) =>
        trs.map((tr) => [...(tr as unknown as { cells: { textContent: string }[] }).cells].map((td) => td.textContent)),
      );
      expect(cells.map((c) => [c[0], c[3], c[4]])).toEqual([
        ['1', 'delayed', 'url_fetch_failed'],
        ['2', 'succeeded', '—'],
      ]);
      expect(cells[0][5]).toContain('500');
      await tab.getByText('No input image is kept for this job').waitFor();
      const timeline = await tab.locator('.timeline li[data-kind="state"]').allTextContents();
      expect(timeline.map((t) => /\b(queued|running|delayed|succeeded)\b/.exec(t)?.[1])).toEqual([
        'queued',
        'running',
        'delayed',
        'queued',
        'running',
        'succeeded',
      ]);
      await screenshot(tab, 'job-detail-attempts');
      await tab.close();
    } finally {
      await flaky.close();
    }
  });

  it("never shows a vendor another vendor's jobs or images", async () => {
    const form = new FormData();
    form.append('type', 'transform');
    form.append('options', JSON.stringify({ format: 'png' }));
    form.append('image', new Blob([await jpeg(64, 48)], { type: 'image/jpeg' }), 'p.jpg');
    const submitted = await api.call('POST', '/v1/jobs', { key: vendor.key, form });
    expect(submitted.status).toBe(202);
    const theirs = submitted.body.id as string;
    await waitForJob(api, vendor.key, theirs, ['succeeded']);
    await submit(other.key, { type: 'noop' });
    const tab = await signedIn(other.key, '/jobs');
    await jobRows(tab).first().waitFor();
    const listed = await jobRows(tab).evaluateAll((trs) =>
      trs.map((tr) => (tr as unknown as { dataset: { job: string } }).dataset.job),
    );
    const own = (await api.call('GET', '/v1/jobs', { key: other.key })).body.jobs.map((j: { id: string }) => j.id);
    expect(listed.sort()).toEqual(own.sort());
    expect(listed).not.toContain(theirs);
    await tab.setViewportSize({ width: 375, height: 800 });
    await screenshot(tab, 'jobs-375px');

    await tab.goto(`${api.base}/jobs/${theirs}`);
    await tab
      .getByRole('alert')
      .filter({ hasText: /not found/i })
      .waitFor();
    expect(await tab.locator('img').count()).toBe(0);
    await tab.close();
  });

  it("shows a vendor's assets as thumbnails through their delivery URLs, finds them by prefix, deletes one", async () => {
    const put = async (path: string, bytes: Buffer) => {
      const form = new FormData();
      form.append('image', new Blob([bytes], { type: 'image/jpeg' }), 'a.jpg');
      expect((await api.call('PUT', `/v1/assets/${path}`, { key: vendor.key, form })).status).toBe(200);
    };
    await put('shoes/red', await portraitJpeg(PORTRAITS[0]));
    await put('shoes/blue', await portraitJpeg(PORTRAITS[1]));
    await put('hats/green', await jpeg(300, 200));
    const tab = await signedIn(vendor.key, '/assets');
    const tiles = tab.getByRole('list', { name: 'Assets' }).locator('li');
    await waitUntil(async () => (await tiles.count()) === 3, 30_000, 'three asset tiles');
    // Every thumbnail is a real image the browser decoded (fetched through the signed delivery URL).
    await waitUntil(
      async () =>
        (await tab
          .locator('.asset-tile img')
          .evaluateAll((imgs) => imgs.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth > 0))) ===
        true,
      30_000,
      'the thumbnails to load',
    );
    await screenshot(tab, 'assets');

    await tab.getByLabel('Path prefix').fill('shoes/');
    await tab.getByRole('button', { name: 'Search' }).click();
    await waitUntil(async () => (await tiles.count()) === 2, 15_000, 'the shoes only');
    tab.once('dialog', (dialog) => void dialog.accept());
    await tab.locator('[data-asset="shoes/red"]').getByRole('button', { name: 'Delete' }).click();
    await waitUntil(async () => (await tiles.count()) === 1, 15_000, 'the deleted tile to go');
    expect((await api.call('GET', '/v1/assets/shoes/red', { key: vendor.key })).status).toBe(404);
    // Another vendor sees none of them.
    const otherTab = await signedIn(other.key, '/assets');
    await otherTab.getByText('No assets.').waitFor();
    await otherTab.close();

    // The Jobs list shows a thumbnail of each succeeded output.
    const form = new FormData();
    form.append('type', 'transform');
    form.append('image', new Blob([await jpeg(120, 80)], { type: 'image/jpeg' }), 'p.jpg');
    const job = await api.call('POST', '/v1/jobs', { key: vendor.key, form });
    await waitForJob(api, vendor.key, job.body.id, ['succeeded']);
    await tab.goto(`${api.base}/jobs`);
    await jobRows(tab).first().waitFor();
    const thumbs = tab.locator('img.thumb');
    await waitUntil(
      async () =>
        (await thumbs.count()) > 0 &&
        (await thumbs.evaluateAll((imgs) =>
          imgs.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth > 0),
        )),
      30_000,
      'output thumbnails in the Jobs list',
    );
    await tab.close();
  });
});
