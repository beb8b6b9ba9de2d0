import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { PixqError } from '../../src/errors.js';
import { parseOptions } from '../../src/processors/options.js';
import { createTransform, type TransformOptions } from '../../src/processors/transform.js';
import { testContext } from '../support/portraits.js';

const processor = createTransform(loadConfig({}));

function options(raw: unknown): TransformOptions {
  return parseOptions(processor, raw);
}

async function transform(input: Buffer, raw: unknown = {}) {
  const ctx = testContext(input, options(raw));
  const result = await processor.run(ctx);
  const [output] = result.outputs;
  const bytes = ctx.blobs.get(output.key);
  return { ctx, result, output, bytes, meta: await sharp(bytes).metadata() };
}

async function failure(input: Buffer | undefined, raw: unknown = {}): Promise<PixqError> {
  const err = await processor.run(testContext(input, options(raw))).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixqError);
  return err as PixqError;
}

/** RGB(A) of one pixel of an encoded image. */
async function pixel(bytes: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + info.channels)];
}

function solid(width: number, height: number, colour: string, channels: 3 | 4 = 3) {
  return sharp({ create: { width, height, channels, background: colour } });
}

/** Left half red, right half blue: shows which side a crop kept and which way an image turned. */
async function halves(width: number, height: number): Promise<Buffer> {
  const right = await solid(width / 2, height, '#0000ff')
    .png()
    .toBuffer();
  return solid(width, height, '#ff0000')
    .composite([{ input: right, left: width / 2, top: 0 }])
    .png()
    .toBuffer();
}

/** Random pixels compress badly, so encoder quality shows in the byte count. */
async function noiseJpeg(width: number, height: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let seed = 42;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    data[i] = seed >> 23;
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();
}

describe('transform resize', () => {
  it.each([
    ['inside', { width: 100, height: 100 }, [100, 50]],
    ['contain', { width: 100, height: 100 }, [100, 100]],
    ['cover', { width: 100, height: 100 }, [100, 100]],
    ['fill', { width: 100, height: 100 }, [100, 100]],
    ['outside', { width: 100, height: 100 }, [200, 100]],
    ['inside', { width: 50 }, [50, 25]],
    ['inside', { height: 30 }, [60, 30]],
  ] as const)('fit %s to %j gives %j', async (fit, size, [width, height]) => {
    const { output, meta } = await transform(await halves(400, 200), { resize: { ...size, fit } });
    expect([output.width, output.height]).toEqual([width, height]);
    expect([meta.width, meta.height]).toEqual([width, height]);
  });

  it('defaults fit to cover: width and height give exactly that size, one side keeps the aspect', async () => {
    // 698x899 is not quite 413:531; a box-fitting default gave 412x531.
    const nearly = await transform(await solid(698, 899, '#808080').png().toBuffer(), {
      resize: { width: 413, height: 531 },
    });
    expect([nearly.meta.width, nearly.meta.height]).toEqual([413, 531]);
    const oneSide = await transform(await halves(400, 200), { resize: { width: 50 } });
    expect([oneSide.meta.width, oneSide.meta.height]).toEqual([50, 25]);
    expect(options({ resize: { width: 10 } }).resize?.fit).toBe('cover');
  });

  it('withoutEnlargement keeps a small image at its size', async () => {
    const small = await halves(40, 20);
    expect((await transform(small, { resize: { width: 400 } })).output.width).toBe(400);
    expect((await transform(small, { resize: { width: 400, withoutEnlargement: true } })).output.width).toBe(40);
  });

  it('position chooses which part a cover crop keeps', async () => {
    const input = await halves(400, 200);
    const left = await transform(input, { resize: { width: 100, height: 200, fit: 'cover', position: 'left' } });
    const right = await transform(input, { resize: { width: 100, height: 200, fit: 'cover', position: 'right' } });
    expect((await pixel(left.bytes, 50, 100)).slice(0, 3)).toEqual([255, 0, 0]);
    expect((await pixel(right.bytes, 50, 100)).slice(0, 3)).toEqual([0, 0, 255]);
  });

  it('letterboxes contain with the background colour', async () => {
    const { bytes, meta } = await transform(await halves(400, 200), {
      resize: { width: 200, height: 200, fit: 'contain' },
      background: '#00ff00',
    });
    expect(meta.hasAlpha).toBe(false);
    expect(await pixel(bytes, 100, 5)).toEqual([0, 255, 0]);
    expect(await pixel(bytes, 10, 100)).toEqual([255, 0, 0]);
  });

  it('letterboxes contain transparently without a background, switching jpeg input to png', async () => {
    const jpeg = await solid(400, 200, '#ff0000').jpeg().toBuffer();
    const { output, bytes } = await transform(jpeg, { resize: { width: 200, height: 200, fit: 'contain' } });
    expect(output.contentType).toBe('image/png');
    expect((await pixel(bytes, 100, 5))[3]).toBe(0);
  });
});

describe('transform format and quality', () => {
  it.each([
    ['jpeg', () => solid(64, 48, '#336699').jpeg().toBuffer(), 'image/jpeg', 'jpeg'],
    ['png', () => solid(64, 48, '#336699').png().toBuffer(), 'image/png', 'png'],
    ['webp', () => solid(64, 48, '#336699').webp().toBuffer(), 'image/webp', 'webp'],
    ['gif', () => solid(64, 48, '#336699').gif().toBuffer(), 'image/png', 'png'],
    ['tiff', () => solid(64, 48, '#336699').tiff().toBuffer(), 'image/png', 'png'],
  ])('keeps the family of a %s input by default', async (_, make, contentType, format) => {
    const { output, meta } = await transform(await make());
    expect(output.contentType).toBe(contentType);
    expect(meta.format).toBe(format);
  });

  it.each([
    ['png', 'image/png', 'png'],
    ['jpeg', 'image/jpeg', 'jpeg'],
    ['webp', 'image/webp', 'webp'],
    ['avif', 'image/avif', 'heif'],
  ])('writes %s when asked', async (format, contentType, sharpFormat) => {
    const { output, meta } = await transform(await solid(64, 48, '#336699').jpeg().toBuffer(), { format });
    expect(output.contentType).toBe(contentType);
    expect(meta.format).toBe(sharpFormat);
  });

  it('lower quality gives smaller files', async () => {
    const noise = await noiseJpeg(256, 256);
    const low = await transform(noise, { format: 'jpeg', quality: 20 });
    const high = await transform(noise, { format: 'jpeg', quality: 95 });
    expect(low.bytes.length * 2).toBeLessThan(high.bytes.length);
  });

  it('jpeg output of a transparent image is flattened onto white', async () => {
    const { bytes, meta } = await transform(await solid(20, 20, '#ff000000', 4).png().toBuffer(), { format: 'jpeg' });
    expect(meta.hasAlpha).toBe(false);
    const [r, g, b] = await pixel(bytes, 10, 10);
    expect(Math.min(r, g, b)).toBeGreaterThan(245);
  });
});

describe('transform background, rotate, trim, metadata', () => {
  it('flattens transparency onto the background colour', async () => {
    const cutout = await solid(20, 20, '#00000000', 4)
      .composite([{ input: await solid(10, 10, '#0000ff').png().toBuffer(), left: 5, top: 5 }])
      .png()
      .toBuffer();
    const { bytes, meta } = await transform(cutout, { background: 'rgb(255, 0, 0)' });
    expect(meta.hasAlpha).toBe(false);
    expect(await pixel(bytes, 0, 0)).toEqual([255, 0, 0]);
    expect(await pixel(bytes, 10, 10)).toEqual([0, 0, 255]);
  });

  it.each(['#ggg', 'rgb(300,0,0)', 'reddish', ''])('refuses the colour %j at submit time', (background) => {
    expect(() => options({ background })).toThrow(expect.objectContaining({ code: 'validation_failed' }));
  });

  it('rotates by quarter turns, clockwise', async () => {
    const { output, bytes } = await transform(await halves(400, 200), { rotate: 90 });
    expect([output.width, output.height]).toEqual([200, 400]);
    // Red was on the left; a clockwise quarter turn takes the left side to the top.
    expect((await pixel(bytes, 100, 50)).slice(0, 3)).toEqual([255, 0, 0]);
    expect((await pixel(bytes, 100, 350)).slice(0, 3)).toEqual([0, 0, 255]);
  });

  it('rotates by any angle onto the background, and resizes the rotated canvas', async () => {
    const { output, bytes } = await transform(await solid(200, 200, '#ff0000').png().toBuffer(), {
      rotate: 45,
      background: '#00ff00',
      resize: { width: 100 },
    });
    expect(output.width).toBe(100);
    expect(Math.abs(output.height - 100)).toBeLessThanOrEqual(1);
    expect(await pixel(bytes, 1, 1)).toEqual([0, 255, 0]);
    expect(await pixel(bytes, 50, 50)).toEqual([255, 0, 0]);
  });

  it('needs a background for an angle that is not a quarter turn', () => {
    expect(() => options({ rotate: 30 })).toThrow(expect.objectContaining({ code: 'validation_failed' }));
    expect(options({ rotate: -90 }).rotate).toBe(-90);
  });

  it('trims a plain border, with a threshold for a near-plain one', async () => {
    const framed = await solid(300, 200, '#ffffff')
      .composite([{ input: await solid(100, 60, '#123456').png().toBuffer(), left: 50, top: 40 }])
      .png()
      .toBuffer();
    const trimmed = await transform(framed, { trim: true });
    expect([trimmed.output.width, trimmed.output.height]).toEqual([100, 60]);
    const untouched = await transform(framed, { trim: false });
    expect([untouched.output.width, untouched.output.height]).toEqual([300, 200]);
    const noisyFrame = await solid(300, 200, '#f0f0f0')
      .composite([
        { input: await solid(300, 100, '#e4e4e4').png().toBuffer(), left: 0, top: 0 },
        { input: await solid(100, 60, '#123456').png().toBuffer(), left: 50, top: 40 },
      ])
      .png()
      .toBuffer();
    const strict = await transform(noisyFrame, { trim: 5 });
    const loose = await transform(noisyFrame, { trim: 40 });
    expect(strict.output.height).toBeGreaterThan(60);
    expect([loose.output.width, loose.output.height]).toEqual([100, 60]);
  });

  it('strips EXIF and keeps an sRGB ICC profile; applies the EXIF orientation first', async () => {
    const withExif = await sharp(await halves(400, 200))
      .jpeg()
      .withExif({ IFD0: { Copyright: 'secret-owner', Make: 'PhoneCo' } })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(withExif).metadata()).exif).toBeDefined();
    const { meta, output, bytes } = await transform(withExif);
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect(bytes.includes(Buffer.from('secret-owner'))).toBe(false);
    expect(meta.icc).toBeDefined();
    expect(meta.space).toBe('srgb');
    expect([output.width, output.height]).toEqual([200, 400]);
  });
});

describe('transform input checks and job mechanics', () => {
  it('refuses a truncated image as invalid_image', async () => {
    const jpeg = await noiseJpeg(200, 200);
    expect((await failure(jpeg.subarray(0, Math.floor(jpeg.length / 2)))).code).toBe('invalid_image');
  });

  it('refuses corrupt bytes behind a valid header as invalid_image', async () => {
    const png = await solid(200, 200, '#336699').png().toBuffer();
    const corrupt = Buffer.from(png);
    corrupt.fill(0x5a, 60, corrupt.length - 20);
    expect((await failure(corrupt)).code).toBe('invalid_image');
  });

  it('refuses a text file and a missing input as invalid_image', async () => {
    expect((await failure(Buffer.from('name,price\nshoe,10\n'))).code).toBe('invalid_image');
    expect((await failure(undefined)).code).toBe('invalid_image');
  });

  it('refuses unknown options and an empty resize', () => {
    for (const raw of [
      { resize: { fit: 'cover' } },
      { sharpen: true },
      { quality: 0 },
      { format: 'gif' },
      { trim: -1 },
    ]) {
      expect(() => options(raw)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
    }
  });

  it('reports stages and stores exactly one output', async () => {
    const { ctx, result } = await transform(await halves(40, 20), { resize: { width: 20 } });
    expect(ctx.updates.map((u) => u.stage)).toEqual(['decode', 'transform', 'store', 'done']);
    expect(ctx.blobs.stored.size).toBe(1);
    expect(result.result).toEqual({ width: 20, height: 10, format: 'png' });
  });

  it('rejects with cancelled when the job is aborted, storing nothing', async () => {
    const ctx = testContext(await halves(40, 20), options({}));
    ctx.controller.abort();
    const err = await processor.run(ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'cancelled' });
    expect(ctx.blobs.stored.size).toBe(0);
  });
});
