import { createHash } from 'node:crypto';
import { isAssetPath } from '@pixq/client/schemas';
import { blobKeyOf, type BlobStore } from '../blobs/index.js';
import type { DeliveryConfig } from '../config.js';
import { verifyingPairs, type Asset, type DeliverySettings, type Engine, type Variant } from '../engine/index.js';
import { PixqError, jobErrors } from '../errors.js';
import { MAX_OUTPUT_SIDE } from '../processors/output-size.js';
import { FairQueue } from './fair-queue.js';
import { planRender, type RenderPlan } from './geometry.js';
import { MemoryCache } from './memory-cache.js';
import {
  canonicalOptions,
  defaultRenderOptions,
  isIdentity,
  parseOptions,
  type DeliveryFormat,
  type RenderOptions,
} from './options.js';
import { renderVariant, uprightSize } from './render.js';
import { verifyPath } from './signature.js';
import { badUrl, parseDeliveryPath, type DeliveryPath } from './url.js';

/**
 * Serves a vendor's assets through imgproxy-format URLs (src/delivery/url.ts): checks the signature with the
 * vendor's key, reads the options, picks the format (the URL's, else by `Accept`), and answers with the
 * original's bytes or a rendered variant. A variant is rendered once (concurrent requests for it wait for that
 * one render), kept as a blob and a row of the store's bounded cache, and served from then on by any process;
 * hot variants also stay in this process's memory.
 */

export interface DeliveryRequest {
  /** The path after `/i/`, as sent (percent-escapes intact): the signature covers it. */
  rawPath: string;
  accept: string | undefined;
  ifNoneMatch: string | undefined;
}

export interface DeliveryAnswer {
  status: 200 | 304;
  headers: Record<string, string>;
  body?: Buffer | NodeJS.ReadableStream;
}

/** What delivery counts, for /metrics and tests (per process). */
export interface DeliveryCounters {
  /** Variants rendered. */
  renders: number;
  /** Answers from the memory cache, the store's cache, or the original. */
  hits: number;
  /** Requests that waited for a render another request had started. */
  coalesced: number;
  /** 304 answers. */
  notModified: number;
}

export interface DeliveryDeps {
  engine: Engine;
  blobs: BlobStore;
  config: DeliveryConfig;
  maxPixels: number;
  /** Spends one unit of the vendor's render budget; throws 429 when it is spent. */
  chargeRender(vendorId: string): Promise<void>;
  /** Where failures that no request sees (a background write) are reported. */
  onError(err: unknown, message: string): void;
}

/** What a variant is rendered from: an asset, or a stored image of the vendor's (a job's output). */
interface Source {
  blob: string;
  vendorId: string;
  /** Upright size, when known without reading the image. */
  width?: number;
  height?: number;
}

interface RenderedVariant {
  variant: Variant;
  bytes: Buffer;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Vendor settings are re-read after this long, or at once when a signature does not verify with them. */
const SETTINGS_TTL_MS = 5_000;
/** Variants served since the last flush are marked used in one statement this often. */
const TOUCH_INTERVAL_MS = 5_000;
const MAX_WAITING_RENDERS = 256;

const OWN_FORMAT: Record<string, DeliveryFormat> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/avif': 'avif',
  'image/tiff': 'jpeg',
  'image/gif': 'png',
};
const MIME: Record<DeliveryFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};

export function invalidSignature(): PixqError {
  return new PixqError('invalid_signature', 'the delivery URL is not signed for this vendor', { status: 403 });
}

interface CachedSettings {
  settings: (DeliverySettings & { active: boolean }) | undefined;
  readAt: number;
}

export class DeliveryService {
  readonly counters: DeliveryCounters = { renders: 0, hits: 0, coalesced: 0, notModified: 0 };
  private readonly settings = new Map<string, CachedSettings>();
  private readonly inflight = new Map<string, Promise<RenderedVariant>>();
  private readonly writing = new Set<Promise<void>>();
  private readonly memory: MemoryCache<RenderedVariant>;
  private readonly renders: FairQueue;
  private touched = new Set<string>();
  private readonly touchTimer: NodeJS.Timeout;

  constructor(private readonly deps: DeliveryDeps) {
    this.memory = new MemoryCache(deps.config.memoryBytes);
    this.renders = new FairQueue(deps.config.concurrency, MAX_WAITING_RENDERS);
    this.touchTimer = setInterval(() => void this.flushTouched(), TOUCH_INTERVAL_MS).unref();
  }

  /**
   * Checks a request's URL up to its signature: what may be refused before anything is known to be the
   * vendor's (a malformed URL, an unknown vendor, a bad signature). The caller meters such refusals.
   */
  async authenticate(rawPath: string): Promise<{ path: DeliveryPath; settings: DeliverySettings }> {
    const path = parseDeliveryPath(rawPath);
    const settings = (await this.verified(path, false)) ?? (await this.verified(path, true));
    if (!settings) throw invalidSignature();
    return { path, settings };
  }

  /** Answers a request `authenticate` accepted. */
  async answer(
    { path, settings }: { path: DeliveryPath; settings: DeliverySettings },
    request: Pick<DeliveryRequest, 'accept' | 'ifNoneMatch'>,
  ): Promise<DeliveryAnswer> {
    const options = parseOptions(path.options, path.extension, settings);
    if (!isAssetPath(path.assetPath)) throw badUrl('the URL does not name a valid asset path');
    const asset = await this.deps.engine.assets.get(settings.vendorId, path.assetPath);
    const negotiated = options.render.format === null;
    const format = options.render.format ?? this.negotiate(request.accept) ?? OWN_FORMAT[asset.contentType] ?? 'png';
    const headers: Record<string, string> = {
      'cache-control':
        options.cachebuster === asset.version ? IMMUTABLE : `public, max-age=${this.deps.config.maxAgeS}`,
      'x-content-type-options': 'nosniff',
      ...(negotiated && { vary: 'Accept' }),
    };
    if (isIdentity(options.render) && MIME[format] === asset.contentType) {
      return this.original(asset, headers, request.ifNoneMatch);
    }
    const plan = planRender(asset.width, asset.height, options.render);
    this.checkOutputSize(plan);
    return this.variant(asset, options.render, format, headers, request.ifNoneMatch, () => plan);
  }

  /**
   * A thumbnail of a stored image (a job's output or input, by its signed link): at most `side` pixels a side,
   * in the format the client prefers, rendered and cached like any variant. The render is the vendor's.
   */
  async thumbnail(
    source: { blob: string; vendorId: string; contentType: string },
    side: number,
    request: Pick<DeliveryRequest, 'accept' | 'ifNoneMatch'>,
  ): Promise<DeliveryAnswer> {
    const options: RenderOptions = { ...defaultRenderOptions(), width: side, height: side };
    const format = this.negotiate(request.accept) ?? OWN_FORMAT[source.contentType] ?? 'png';
    const headers = { 'cache-control': 'private, max-age=300', 'x-content-type-options': 'nosniff', vary: 'Accept' };
    return this.variant(source, options, format, headers, request.ifNoneMatch, (meta) =>
      planRender(meta.width, meta.height, options),
    );
  }

  /** Drops what this process keeps of a vendor's settings: they changed here (other processes re-read within 5 s). */
  forget(vendorName: string): void {
    this.settings.delete(vendorName);
  }

  /** Waits for variants still being stored, records the pending hit marks and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.touchTimer);
    await Promise.all(this.writing);
    await this.flushTouched();
  }

  private async verified(path: DeliveryPath, fresh: boolean) {
    const settings = await this.settingsOf(path.vendor, fresh);
    if (!settings) return undefined;
    if (path.signature === 'insecure') return settings.public ? settings : undefined;
    return verifyPath(verifyingPairs(settings, Date.now()), path.signature, path.signed) ? settings : undefined;
  }

  /**
   * A vendor's settings from this process's cache (at most SETTINGS_TTL_MS old), or from the store when `fresh`:
   * a URL signed with a key rotated in another process verifies at its first request all the same.
   */
  private async settingsOf(vendor: string, fresh: boolean) {
    const cached = this.settings.get(vendor);
    if (!fresh && cached && Date.now() - cached.readAt < SETTINGS_TTL_MS) return cached.settings;
    const settings = await this.deps.engine.delivery.forVendorName(vendor);
    if (this.settings.size > 10_000) this.settings.clear();
    this.settings.set(vendor, { settings, readAt: Date.now() });
    return settings;
  }

  private negotiate(accept: string | undefined): DeliveryFormat | undefined {
    if (!accept) return undefined;
    const accepted = new Set(
      accept
        .split(',')
        .map((range) => range.trim().split(';'))
        .filter(([, ...params]) => !params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p)))
        .map(([type]) => type.trim().toLowerCase()),
    );
    return this.deps.config.formats.find((f) => accepted.has(`image/${f}`));
  }

  private async original(
    asset: Asset,
    headers: Record<string, string>,
    ifNoneMatch: string | undefined,
  ): Promise<DeliveryAnswer> {
    const etag = `"${asset.blob.slice(0, 32)}"`;
    if (matches(ifNoneMatch, etag)) return this.notModified(etag, headers);
    this.counters.hits++;
    return {
      status: 200,
      headers: { ...headers, etag, 'content-type': asset.contentType, 'content-length': String(asset.bytes) },
      body: this.deps.blobs.stream(asset.blob),
    };
  }

  private checkOutputSize(plan: RenderPlan) {
    const { width, height } = plan;
    if (width * height > this.deps.maxPixels || width > MAX_OUTPUT_SIDE || height > MAX_OUTPUT_SIDE) {
      const limits = { maxPixels: this.deps.maxPixels, maxSide: MAX_OUTPUT_SIDE };
      const { code, message, details } = jobErrors.outputTooLarge(width, height, limits);
      throw new PixqError(code, message, { status: 400, details });
    }
  }

  /**
   * A variant of `source`: its key (the source's bytes, the canonical options and the format) names one content,
   * so its ETag answers revalidation without reading anything; then memory, the store's cache, or a render.
   * `plan` sizes the render from the source's size, which a render reads from the image when it is not known.
   */
  private async variant(
    source: Source,
    options: RenderOptions,
    format: DeliveryFormat,
    headers: Record<string, string>,
    ifNoneMatch: string | undefined,
    plan: (size: { width: number; height: number }) => RenderPlan,
  ): Promise<DeliveryAnswer> {
    const key = createHash('sha256')
      .update(`v1|${source.blob}|${canonicalOptions(options)}|${format}`)
      .digest('hex');
    const etag = `"${key.slice(0, 32)}"`;
    if (matches(ifNoneMatch, etag)) return this.notModified(etag, headers);
    const cached = this.memory.get(key);
    const { variant, bytes } =
      cached ?? (await this.load(key, (stored) => this.render(key, source, options, format, plan, stored)));
    this.touched.add(key);
    return {
      status: 200,
      headers: { ...headers, etag, 'content-type': variant.contentType, 'content-length': String(variant.bytes) },
      body: bytes,
    };
  }

  /** A variant from the store's cache, else rendered: once, however many requests ask for it at the same time. */
  private async load(key: string, render: (stored: () => void) => Promise<RenderedVariant>): Promise<RenderedVariant> {
    const stored = await this.deps.engine.variants.find(key);
    if (stored) {
      const bytes = await this.deps.blobs.get(stored.blob).catch((err: unknown) => {
        // Evicted and swept since it was read, or its write was lost in a crash: render it again.
        if (err instanceof PixqError && err.code === 'not_found') return undefined;
        throw err;
      });
      if (bytes) {
        this.counters.hits++;
        this.memory.set(key, { variant: stored, bytes });
        return { variant: stored, bytes };
      }
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.coalesced++;
      return pending;
    }
    // The entry stays until the variant is stored (or its render failed): a request that missed it in the
    // store meanwhile waits for this render instead of starting another.
    const rendering = render(() => this.inflight.delete(key));
    rendering.catch(() => this.inflight.delete(key));
    this.inflight.set(key, rendering);
    return rendering;
  }

  /**
   * Renders a variant and answers with it at once; storing it (the blob, then its cache row) goes on after the
   * answer, since a lost write only costs a render later. The render budget is spent before any pixel work.
   */
  private async render(
    key: string,
    source: Source,
    options: RenderOptions,
    format: DeliveryFormat,
    plan: (size: { width: number; height: number }) => RenderPlan,
    stored: () => void,
  ): Promise<RenderedVariant> {
    await this.deps.chargeRender(source.vendorId);
    const encoded = await this.renders.run(source.vendorId, async () => {
      const bytes = await this.deps.blobs.get(source.blob);
      const size =
        source.width && source.height ? { width: source.width, height: source.height } : await uprightSize(bytes);
      return renderVariant(bytes, plan(size), options, format, this.deps.maxPixels);
    });
    this.counters.renders++;
    const variant: Variant = {
      key,
      blob: blobKeyOf(encoded.data),
      contentType: encoded.contentType,
      width: encoded.width,
      height: encoded.height,
      bytes: encoded.data.length,
    };
    this.memory.set(key, { variant, bytes: encoded.data });
    this.keep(variant, encoded.data, stored);
    return { variant, bytes: encoded.data };
  }

  /** Stores a rendered variant in the background; `close` waits for what is still being written. */
  private keep(variant: Variant, bytes: Buffer, stored: () => void) {
    const writing = (async () => {
      await this.deps.blobs.put(bytes, variant.contentType);
      await this.deps.engine.variants.record(variant, this.deps.config.cacheBytes);
    })()
      .catch((err: unknown) =>
        this.deps.onError(err, 'a rendered variant could not be stored; it renders again next time'),
      )
      .finally(() => {
        stored();
        this.writing.delete(writing);
      });
    this.writing.add(writing);
  }

  private notModified(etag: string, headers: Record<string, string>): DeliveryAnswer {
    this.counters.notModified++;
    return { status: 304, headers: { ...headers, etag } };
  }

  private async flushTouched() {
    if (this.touched.size === 0) return;
    const keys = [...this.touched];
    this.touched = new Set();
    await this.deps.engine.variants.touch(keys).catch(() => {
      // Advisory: a lost batch of marks only makes eviction a little less exact.
    });
  }
}

/** Whether an If-None-Match header names `etag` (or `*`); weak comparison, as RFC 9110 asks for GET. */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}
