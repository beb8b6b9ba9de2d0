import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { detectFaces } from '../../src/processors/faces/detector.js';
import { openImage } from '../../src/processors/image.js';
import { parseOptions } from '../../src/processors/options.js';
import { createRemoveBackground } from '../../src/processors/remove-background.js';
import { PORTRAITS, portraitJpeg, testContext, type Region } from '../support/portraits.js';
import { TEST_MODELS_DIR } from '../support/models.js';

const config = loadConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR });
const removeBackground = createRemoveBackground(config);

afterAll(async () => {
  await removeBackground.close();
});

/** Mean alpha (0..255) over a region of an RGBA image. */
async function meanAlpha(png: Buffer, region: Region): Promise<number> {
  const { data, info } = await sharp(png).ensureAlpha().extractChannel(3).raw().toBuffer({ resolveWithObject: true });
  let sum = 0;
  for (let y = region.y; y < region.y + region.height; y++) {
    for (let x = region.x; x < region.x + region.width; x++) sum += data[y * info.width + x];
  }
  return sum / (region.width * region.height);
}

// Both real models together: the face the detector finds is the face background removal keeps.
describe('background removal on real portraits, checked against the detected face', () => {
  it.each(PORTRAITS.map((p) => [p.name, p] as const))(
    '%s: the detected face stays opaque, the top corners clear',
    async (_name, portrait) => {
      const input = await portraitJpeg(portrait);
      const opened = await openImage(input, config.maxPixels);
      const [face] = await detectFaces(opened.image, opened.width, opened.height);
      expect(face).toBeDefined();

      const ctx = testContext(input, parseOptions(removeBackground, {}));
      const { outputs } = await removeBackground.run(ctx);
      const cutout = ctx.blobs.get(outputs[0].key);
      const box = {
        x: Math.round(face.box.x),
        y: Math.round(face.box.y),
        width: Math.round(face.box.width),
        height: Math.round(face.box.height),
      };
      expect(await meanAlpha(cutout, box)).toBeGreaterThan(0.9 * 255);
      const corner = 24;
      expect(await meanAlpha(cutout, { x: 0, y: 0, width: corner, height: corner })).toBeLessThan(0.1 * 255);
      expect(await meanAlpha(cutout, { x: opened.width - corner, y: 0, width: corner, height: corner })).toBeLessThan(
        0.1 * 255,
      );
    },
    120_000,
  );
});
