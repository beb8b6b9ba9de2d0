import zlib from 'node:zlib';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, imageForm, useApi } from '../support/api.js';

/**
 * Blobs are content-addressed, so a refused upload's bytes may be another vendor's stored input: only the
 * blob ledger's sweep deletes bytes, never the refusal. The repro of issue 20: with a 200,000-byte limit,
 * vendor A's 200,000-byte PNG, then vendor B's 200,001-byte copy (A's bytes and one more), which busboy cuts
 * at the limit to exactly A's bytes.
 */
const LIMIT = 200_000;

describeEachStore('a refused upload', (target) => {
  const api = useApi(target, { PIXQ_MAX_UPLOAD_BYTES: String(LIMIT) });

  it("leaves another vendor's identical bytes in place", async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    const bytes = await pngOfExactly(LIMIT);
    const submitted = await api().call('POST', '/v1/jobs', {
      key: a.key,
      form: imageForm([{ bytes, name: 'a.png', type: 'image/png' }], { type: 'transform' }),
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);

    const oneMore = Buffer.concat([bytes, Buffer.from([0])]);
    for (const path of ['/v1/uploads', '/v1/jobs']) {
      const refused = await api().call('POST', path, {
        key: b.key,
        form: imageForm([{ bytes: oneMore, name: 'b.png', type: 'image/png' }], { type: 'transform' }),
      });
      expectProblem(refused, 413, 'payload_too_large');
    }

    const input = await api().call('GET', `/v1/jobs/${submitted.body.id}/input`, { key: a.key });
    expect(input.status).toBe(200);
    expect(input.raw.equals(bytes)).toBe(true);
    // The sweep, past the grace period, keeps what A's job refers to.
    await api().services.engine.blobs.sweep((key) => api().services.blobs.delete(key), Date.now() + BLOB_GRACE_MS + 1);
    const later = await api().call('GET', `/v1/jobs/${submitted.body.id}/input`, { key: a.key });
    expect(later.raw.equals(bytes)).toBe(true);
  });
});

/** A valid PNG of exactly `size` bytes: noise (so it does not compress away), padded with a private chunk. */
async function pngOfExactly(size: number): Promise<Buffer> {
  const side = 200;
  const noise = Buffer.alloc(side * side * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  const encoded = await sharp(noise, { raw: { width: side, height: side, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  const iend = encoded.length - 12;
  const padding = size - encoded.length - 12; // a chunk's length, type and CRC take 12 bytes
  if (padding < 0) throw new Error(`the noise PNG is already ${encoded.length} bytes`);
  const type = Buffer.from('prVt'); // ancillary, private: decoders skip it
  const data = Buffer.alloc(padding, 0x20);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(padding);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([type, data])));
  const png = Buffer.concat([encoded.subarray(0, iend), length, type, data, crc, encoded.subarray(iend)]);
  expect(png.length).toBe(size);
  return png;
}
