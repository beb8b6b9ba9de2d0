import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A small server on loopback that speaks rembg's HTTP API (`rembg s`): `POST /api/remove` with the image in
 * the multipart field `file`, `bgc` in the query and the other parameters as form fields, answering
 * `image/png`; `GET /openapi.json` answers like FastAPI's schema, which pixq's health check reads. Instead of a
 * network it cuts out the dark pixels (luminance below 128 becomes subject), so answers have a real alpha.
 *
 * `mode` says how it behaves: `ok`; `fail` (HTTP 500 on every route, probes included); `hang` (never
 * answers); `garbage` (200 with an HTML page); `refuse` (422 as FastAPI answers a parameter it does not
 * accept); `enlarge` (a real cut-out at twice the input's size); `hold` (parks each removal until `release()`, so a test
 * can see how many calls are in flight at once, without timing).
 */
export type RembgMode = 'ok' | 'fail' | 'hang' | 'garbage' | 'refuse' | 'enlarge' | 'hold';

export interface RembgCall {
  query: Record<string, string>;
  form: Record<string, string>;
  fileBytes: number;
}

export interface RembgTestServer {
  /** Base URL, e.g. http://127.0.0.1:41234/ */
  url: string;
  mode: RembgMode;
  /** Removal requests as received, in order. */
  calls: RembgCall[];
  probes: number;
  /** Removal requests being worked on now, and the most there ever were at once. */
  active: number;
  maxActive: number;
  /** Removal requests whose client went away before the answer. */
  abandoned: number;
  /** Lets every parked (`hold`) request answer. */
  release(): void;
  close(): Promise<void>;
}

export async function startRembgServer(mode: RembgMode = 'ok'): Promise<RembgTestServer> {
  const parked: (() => void)[] = [];
  const state: RembgTestServer = {
    url: '',
    mode,
    calls: [],
    probes: 0,
    active: 0,
    maxActive: 0,
    abandoned: 0,
    release() {
      for (const go of parked.splice(0)) go();
    },
    close: () =>
      new Promise<void>((resolve) => {
        state.release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://rembg');
    if (req.method === 'GET' && url.pathname === '/openapi.json') {
      state.probes++;
      if (state.mode === 'fail') return void res.writeHead(500).end('Internal Server Error');
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"openapi":"3.1.0","info":{"title":"Rembg"}}');
    }
    if (req.method !== 'POST' || url.pathname !== '/api/remove')
      return void res.writeHead(404).end('{"detail":"Not Found"}');
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      state.active--;
      if (!res.writableFinished) state.abandoned++;
    };
    res.on('close', finish);
    void handleRemove(req, url, state, (go) => parked.push(go))
      .then(({ status, type, body }) => {
        if (status === undefined) return; // hang: answer never
        res.writeHead(status, { 'content-type': type }).end(body);
      })
      .catch((err: Error) => res.writeHead(500).end(err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return state;
}

async function handleRemove(
  req: http.IncomingMessage,
  url: URL,
  state: RembgTestServer,
  park: (go: () => void) => void,
): Promise<{ status?: number; type?: string; body?: Buffer | string }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const form = await new Response(Buffer.concat(chunks), {
    headers: { 'content-type': req.headers['content-type'] ?? '' },
  }).formData();
  const file = form.get('file');
  const fields: Record<string, string> = {};
  for (const [name, value] of form) if (typeof value === 'string') fields[name] = value;
  const image = file instanceof Blob ? Buffer.from(await file.arrayBuffer()) : Buffer.alloc(0);
  state.calls.push({ query: Object.fromEntries(url.searchParams), form: fields, fileBytes: image.length });

  if (state.mode === 'hold') await new Promise<void>(park);
  if (state.mode === 'hang') return {};
  if (state.mode === 'fail') return { status: 500, type: 'text/plain', body: 'Internal Server Error' };
  if (state.mode === 'garbage')
    return { status: 200, type: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' };
  if (state.mode === 'refuse' || !(file instanceof Blob)) {
    return {
      status: 422,
      type: 'application/json',
      body: '{"detail":[{"loc":["body","model"],"msg":"string does not match regex"}]}',
    };
  }
  const answer = await cutOut(image, fields.om === 'true', url.searchParams.get('bgc'));
  if (state.mode !== 'enlarge') return { status: 200, type: 'image/png', body: answer };
  const { width = 1, height = 1 } = await sharp(answer).metadata();
  return {
    status: 200,
    type: 'image/png',
    body: await sharp(answer)
      .resize(width * 2, height * 2)
      .png()
      .toBuffer(),
  };
}

/** Dark pixels are the subject; the answer is RGBA (or the grey mask), optionally flattened onto `bgc`. */
async function cutOut(image: Buffer, onlyMask: boolean, bgc: string | null): Promise<Buffer> {
  const { data, info } = await sharp(image)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = info.width * info.height;
  const mask = Buffer.alloc(pixels);
  for (let i = 0; i < pixels; i++) {
    const [r, g, b] = [data[i * 3], data[i * 3 + 1], data[i * 3 + 2]];
    mask[i] = 0.299 * r + 0.587 * g + 0.114 * b < 128 ? 255 : 0;
  }
  const size = { width: info.width, height: info.height };
  if (onlyMask)
    return sharp(mask, { raw: { ...size, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
  const rgba = Buffer.alloc(pixels * 4);
  for (let i = 0; i < pixels; i++) {
    data.copy(rgba, i * 4, i * 3, i * 3 + 3);
    rgba[i * 4 + 3] = mask[i];
  }
  const cut = sharp(rgba, { raw: { ...size, channels: 4 } });
  if (!bgc) return cut.png().toBuffer();
  const [r, g, b, a] = bgc.split(',').map(Number);
  const flat = await cut.png().toBuffer();
  return sharp({ create: { ...size, channels: 4, background: { r, g, b, alpha: a / 255 } } })
    .composite([{ input: flat }])
    .png()
    .toBuffer();
}
