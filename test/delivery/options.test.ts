import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRender } from '../../src/delivery/geometry.js';
import {
  canonicalOptions,
  defaultRenderOptions,
  parseOptions,
  type RenderOptions,
} from '../../src/delivery/options.js';
import { parseDeliveryPath } from '../../src/delivery/url.js';
import { isAssetPath } from '@pixq/client/schemas';

const rules = { presets: {}, presetsOnly: false };
const options = (parts: string[], extension?: string) =>
  parseOptions(
    parts.map((p) => ({ name: p.split(':')[0], args: p.split(':').slice(1) })),
    extension,
    rules,
  ).render;

describe('delivery URLs, options and sizes (pure)', () => {
  it('parses plain and base64 sources, with their extensions, and the options before them', () => {
    const plain = parseDeliveryPath('acme/SIG/rs:fill:300:200/cb:v1/plain/products/1/main@webp');
    expect(plain).toMatchObject({
      vendor: 'acme',
      signature: 'SIG',
      signed: '/rs:fill:300:200/cb:v1/plain/products/1/main@webp',
      options: [
        { name: 'rs', args: ['fill', '300', '200'] },
        { name: 'cb', args: ['v1'] },
      ],
      assetPath: 'products/1/main',
      extension: 'webp',
    });
    const encoded = Buffer.from('products/1/main').toString('base64url');
    expect(parseDeliveryPath(`acme/SIG/w:10/${encoded}.png`)).toMatchObject({
      assetPath: 'products/1/main',
      extension: 'png',
    });
    // imgproxy lets a long base64 source be split with slashes.
    expect(parseDeliveryPath(`acme/SIG/${encoded.slice(0, 5)}/${encoded.slice(5)}`).assetPath).toBe('products/1/main');
  });

  it('refuses asset paths with empty, "." or ".." segments, a leading slash or other characters', () => {
    for (const bad of ['', '.', '..', 'a/./b', 'a/../b', '/a', 'a/', 'a//b', 'a b', 'a:b', 'é', 'x'.repeat(256)]) {
      expect({ bad, valid: isAssetPath(bad) }).toEqual({ bad, valid: false });
    }
    for (const good of ['a', 'a/b', 'products/123/main', '.hidden', 'a..b', 'v1.2/x_y-z', 'x'.repeat(255)]) {
      expect({ good, valid: isAssetPath(good) }).toEqual({ good, valid: true });
    }
  });

  it('gives every spelling of the same options one canonical form', () => {
    const a = options(['rs:fill:300:200', 'g:ce', 'q:80', 'cb:1']);
    const b = options(['resizing_type:fill', 'width:300', 'height:200', 'quality:80', 'cachebuster:2']);
    const c = options(['s:300:200', 'rt:fill', 'gravity:ce:0:0', 'q:80']);
    expect(canonicalOptions(a)).toBe(canonicalOptions(b));
    expect(canonicalOptions(b)).toBe(canonicalOptions(c));
    expect(canonicalOptions(options(['g:no']))).toBe(canonicalOptions(options([]))); // gravity without a size
    expect(canonicalOptions(options(['w:300']))).not.toBe(canonicalOptions(options(['w:301'])));
    // The format is not an option of the image's shape: it is keyed separately.
    expect(canonicalOptions(options([], 'webp'))).toBe(canonicalOptions(options([], 'png')));
  });

  it('sizes fill-down as imgproxy documents it (a 200x100 source)', () => {
    const cases: [number, number, number, number][] = [
      [50, 50, 50, 50],
      [50, 20, 50, 20],
      [20, 50, 20, 50],
      [300, 300, 100, 100],
      [300, 125, 200, 83],
      [250, 300, 83, 100],
      [0, 50, 100, 50],
      [50, 0, 50, 25],
      [0, 200, 200, 100],
      [300, 0, 200, 100],
    ];
    for (const [width, height, w, h] of cases) {
      const plan = planRender(200, 100, { ...defaultRenderOptions(), resizingType: 'fill-down', width, height });
      expect({ asked: [width, height], got: [plan.width, plan.height] }).toEqual({
        asked: [width, height],
        got: [w, h],
      });
    }
  });

  it('never plans a crop outside the scaled image, and never enlarges without enlarge', () => {
    const renderOptions = fc.record({
      resizingType: fc.constantFrom('fit', 'fill', 'fill-down', 'force', 'auto'),
      width: fc.integer({ min: 0, max: 3000 }),
      height: fc.integer({ min: 0, max: 3000 }),
      dpr: fc.constantFrom(1, 1.5, 2, 3),
      enlarge: fc.boolean(),
      extend: fc.boolean(),
      gravity: fc.record({
        type: fc.constantFrom('no', 'so', 'ea', 'we', 'noea', 'sowe', 'ce', 'fp'),
        x: fc.double({ min: 0, max: 1, noNaN: true }),
        y: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 1, max: 4000 }), renderOptions, (w, h, o) => {
        const plan = planRender(w, h, { ...defaultRenderOptions(), ...o } as RenderOptions);
        const crop = plan.crop;
        if (crop) {
          expect(crop.left).toBeGreaterThanOrEqual(0);
          expect(crop.top).toBeGreaterThanOrEqual(0);
          expect(crop.left + crop.width).toBeLessThanOrEqual(plan.scaled.width);
          expect(crop.top + crop.height).toBeLessThanOrEqual(plan.scaled.height);
        }
        if (!o.enlarge) {
          expect(plan.scaled.width).toBeLessThanOrEqual(w);
          expect(plan.scaled.height).toBeLessThanOrEqual(h);
        }
        if (!o.extend)
          expect([plan.width, plan.height]).toEqual([(crop ?? plan.scaled).width, (crop ?? plan.scaled).height]);
        expect(Math.min(plan.width, plan.height)).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 2000 },
    );
  });
});
