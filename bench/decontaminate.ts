/**
 * Colour decontamination, measured on composites whose subject colour and alpha are known (hair-like strands on
 * green, a motion-blurred product on magenta, glass on blue; test/support/soft-edges.ts). The figure is the mean
 * absolute colour error (0..255, per channel) of the cut-out's colour against the true subject colour, over the
 * pixels whose true alpha is strictly between 0 and 1:
 * - **true alpha**: decontamination alone, given the exact alpha (`decontaminate()`), at the working size and
 *   through the large-photo path (a working level of 1/9 the pixels and one full-size pass);
 * - **model alpha**: remove-background end to end with the default model, `decontaminate: false` against the
 *   default; there the pixels counted are also those the cut-out shows (its alpha > 0), and the visible error is
 *   given too: both cut-outs and the truth flattened onto white, compared over the same pixels.
 *
 * Run with `npx tsx bench/decontaminate.ts` (models from PIXQ_MODELS_DIR, else the tests' model directory).
 */
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { decontaminate } from '../src/processors/cutout/decontaminate.js';
import { parseOptions } from '../src/processors/options.js';
import { createRemoveBackground } from '../src/processors/remove-background.js';
import {
  COMPOSITE_NAMES,
  softColourError,
  softEdgeComposite,
  withAlpha,
  type Composite,
} from '../test/support/soft-edges.js';
import { describeMachine } from './machine.js';

const WIDTH = 960;
const HEIGHT = 720;

const round2 = (v: number) => Math.round(v * 100) / 100;

function trueAlphaRow(composite: Composite) {
  const plain = withAlpha(composite.rgb, composite.alpha);
  const dense = withAlpha(composite.rgb, composite.alpha);
  const large = withAlpha(composite.rgb, composite.alpha);
  const started = performance.now();
  decontaminate(dense, composite.width, composite.height);
  const ms = performance.now() - started;
  decontaminate(large, composite.width, composite.height, Math.ceil((composite.width * composite.height) / 9));
  return {
    without: round2(softColourError(plain, composite)),
    with: round2(softColourError(dense, composite)),
    largePhotoPath: round2(softColourError(large, composite)),
    ms: Math.round(ms),
  };
}

/** Colour error and visible error on white over soft truth pixels the cut-out shows. */
function modelErrors(rgba: Uint8Array, composite: Composite) {
  let colour = 0;
  let visible = 0;
  let count = 0;
  for (let i = 0; i < composite.alpha.length; i++) {
    const truth = composite.alpha[i];
    const shown = rgba[i * 4 + 3];
    if (truth === 0 || truth === 255 || shown === 0) continue;
    for (let c = 0; c < 3; c++) {
      const out = rgba[i * 4 + c];
      const f = composite.foreground[i * 3 + c];
      colour += Math.abs(out - f);
      const onWhite = (out * shown + 255 * (255 - shown)) / 255;
      const truthOnWhite = (f * truth + 255 * (255 - truth)) / 255;
      visible += Math.abs(onWhite - truthOnWhite);
    }
    count += 3;
  }
  return { colour: round2(colour / count), visible: round2(visible / count), pixels: count / 3 };
}

async function main() {
  console.log(describeMachine());
  const modelsDir = process.env.PIXQ_MODELS_DIR ?? path.join(os.tmpdir(), 'pixq-test-models');
  const processor = createRemoveBackground(loadConfig({ PIXQ_MODELS_DIR: modelsDir, PIXQ_LOG_LEVEL: 'silent' }));
  const run = async (composite: Composite, decontaminate: boolean) => {
    let stored: Buffer | undefined;
    await processor.run({
      input: composite.png,
      options: parseOptions(processor, { decontaminate }),
      signal: new AbortController().signal,
      progress: () => undefined,
      log: pino({ level: 'silent' }),
      blobs: {
        put: async (data) => {
          stored = data;
          return { key: 'out', bytes: data.length };
        },
      },
    });
    return new Uint8Array(await sharp(stored!).ensureAlpha().raw().toBuffer());
  };
  const rows: {
    name: string;
    trueAlpha: ReturnType<typeof trueAlphaRow>;
    modelAlpha: Record<'without' | 'with', ReturnType<typeof modelErrors>>;
  }[] = [];
  try {
    for (const [index, name] of COMPOSITE_NAMES.entries()) {
      const composite = await softEdgeComposite(index, WIDTH, HEIGHT);
      const [off, on] = [await run(composite, false), await run(composite, true)];
      rows.push({
        name,
        trueAlpha: trueAlphaRow(composite),
        modelAlpha: { without: modelErrors(off, composite), with: modelErrors(on, composite) },
      });
    }
  } finally {
    await processor.close();
  }
  console.log(`composites at ${WIDTH}x${HEIGHT}`);
  console.log(JSON.stringify(rows, null, 2));
  const mean = (pick: (row: (typeof rows)[number]) => number) =>
    round2(rows.reduce((sum, r) => sum + pick(r), 0) / rows.length);
  console.log(
    JSON.stringify({
      meanTrueAlpha: { without: mean((r) => r.trueAlpha.without), with: mean((r) => r.trueAlpha.with) },
      meanModelAlphaColour: {
        without: mean((r) => r.modelAlpha.without.colour),
        with: mean((r) => r.modelAlpha.with.colour),
      },
      meanModelAlphaOnWhite: {
        without: mean((r) => r.modelAlpha.without.visible),
        with: mean((r) => r.modelAlpha.with.visible),
      },
    }),
  );
}

await main();
