import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { sniffImage } from '../../src/intake/index.js';
import { rejection } from '../support/errors.js';

const WIDTH = 40;
const HEIGHT = 30;
const MAX_PIXELS = 1_000_000;

function noise(width = WIDTH, height = HEIGHT) {
  return sharp({
    create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  });
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A structurally valid PNG header claiming width x height, with almost no pixel data: a decompression-bomb stand-in. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // 1-bit greyscale, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const samples: Record<string, Buffer> = {};

beforeAll(async () => {
  const base = noise();
  for (const format of ['jpeg', 'png', 'webp', 'avif', 'tiff', 'gif'] as const) {
    samples[format] = await base.clone().toFormat(format).toBuffer();
  }
});

describe('sniffImage', () => {
  it.each([
    ['jpeg', 'image/jpeg'],
    ['png', 'image/png'],
    ['webp', 'image/webp'],
    ['avif', 'image/avif'],
    ['tiff', 'image/tiff'],
    ['gif', 'image/gif'],
  ])('accepts %s by its bytes', async (format, contentType) => {
    const bytes = samples[format];
    expect(await sniffImage(bytes, MAX_PIXELS)).toEqual({
      contentType,
      format,
      width: WIDTH,
      height: HEIGHT,
      bytes: bytes.length,
    });
  });

  it('reports the upright size of a rotated JPEG', async () => {
    const rotated = await noise().jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const sniffed = await sniffImage(rotated, MAX_PIXELS);
    expect([sniffed.width, sniffed.height]).toEqual([HEIGHT, WIDTH]);
  });

  it.each([
    ['a text file (named photo.jpg by its uploader)', Buffer.from('definitely a photo, trust me\n')],
    [
      'an SVG',
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'),
    ],
    ['a PDF', Buffer.from('%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n')],
    ['a BMP', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)])],
  ])('refuses %s with unsupported_media_type', async (_name, bytes) => {
    const err = await rejection(sniffImage(bytes, MAX_PIXELS));
    expect([err.code, err.status]).toEqual(['unsupported_media_type', 415]);
  });

  it('refuses an empty body as invalid_image', async () => {
    expect((await rejection(sniffImage(Buffer.alloc(0), MAX_PIXELS))).code).toBe('invalid_image');
  });

  it.each(['jpeg', 'png', 'gif', 'webp'])('refuses a truncated %s as invalid_image', async (format) => {
    const whole = samples[format];
    const err = await rejection(sniffImage(whole.subarray(0, Math.floor(whole.length * 0.7)), MAX_PIXELS));
    expect([err.code, err.status]).toEqual(['invalid_image', 422]);
  });

  // Cut in the compressed data, as an interrupted upload is. (A file missing only its two-byte end marker
  // decodes completely, and libjpeg does not always object; browsers show such files too.)
  it('refuses a JPEG cut off in its compressed data', async () => {
    const whole = samples.jpeg;
    const err = await rejection(sniffImage(whole.subarray(0, Math.floor(whole.length * 0.9)), MAX_PIXELS));
    expect(err.code).toBe('invalid_image');
  });

  it('refuses a PNG whose pixel data was damaged in the middle', async () => {
    const damaged = Buffer.from(samples.png);
    damaged.fill(0xff, Math.floor(damaged.length / 2), Math.floor(damaged.length / 2) + 64);
    expect((await rejection(sniffImage(damaged, MAX_PIXELS))).code).toBe('invalid_image');
  });

  it('enforces maxPixels exactly at the boundary', async () => {
    await expect(sniffImage(samples.png, WIDTH * HEIGHT)).resolves.toMatchObject({ width: WIDTH });
    const err = await rejection(sniffImage(samples.png, WIDTH * HEIGHT - 1));
    expect([err.code, err.status]).toEqual(['invalid_image', 422]);
    expect(err.message).toContain(`${WIDTH}x${HEIGHT}`);
  });

  it('refuses a 20,000 x 20,000 PNG from its header, without decoding it', async () => {
    const bomb = pngClaiming(20_000, 20_000);
    expect(bomb.length).toBeLessThan(2000);
    const rssBefore = process.memoryUsage().rss;
    const err = await rejection(sniffImage(bomb, 40_000_000));
    expect(err.code).toBe('invalid_image');
    // The header check's own words: the decode probe, which runs only after it, would call the body corrupt.
    expect(err.message).toContain('20000x20000 (400000000 pixels), above the limit of 40000000');
    // Decoding would need at least 50 MB even at 1 bit per pixel.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(40 * 1024 * 1024);
  });
});
