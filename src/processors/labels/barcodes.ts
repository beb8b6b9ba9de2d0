import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Sharp } from 'sharp';
import {
  prepareZXingModule,
  purgeZXingModule,
  readBarcodes,
  type ReadInputBarcodeFormat,
  type ReadResult,
} from 'zxing-wasm/reader';
import { IdleCache } from './idle-cache.js';
import type { Box } from './ocr.js';

export type BarcodeFormat = 'EAN-13' | 'UPC-A' | 'Code 128' | 'QR Code' | 'DataMatrix';

export interface Barcode {
  format: BarcodeFormat;
  value: string;
  /** False when the symbol was found but its checksum failed (zxing's ChecksumError); `value` is what it reads. */
  valid: boolean;
  error?: string;
  box: Box;
}

const FORMATS: ReadInputBarcodeFormat[] = ['EAN13', 'UPCA', 'Code128', 'QRCode', 'DataMatrix'];
const NAMES: Record<string, BarcodeFormat> = {
  EAN13: 'EAN-13',
  UPCA: 'UPC-A',
  Code128: 'Code 128',
  QRCode: 'QR Code',
  DataMatrix: 'DataMatrix',
};

const require = createRequire(import.meta.url);

/**
 * Barcode reading with the ZXing WebAssembly build. The module is loaded from the file the package ships
 * (never fetched), kept between jobs and dropped after `idleMs` unused.
 */
export class BarcodeReader {
  private readonly module: IdleCache<object>;

  constructor(idleMs: number) {
    this.module = new IdleCache(idleMs, () => purgeZXingModule());
  }

  /** Reads every supported symbol in the image; damaged EAN/UPC symbols are returned with `valid: false`. */
  async read(image: Sharp, signal: AbortSignal): Promise<Barcode[]> {
    const { data, info } = await image.clone().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    signal.throwIfAborted();
    const pixels = {
      data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      colorSpace: 'srgb' as const,
    };
    const { value } = await this.module.use('zxing', loadModule, async () => {
      await loadModule();
      return readBarcodes(pixels, { formats: FORMATS, returnErrors: true, maxNumberOfSymbols: 32, tryHarder: true });
    });
    signal.throwIfAborted();
    return value.filter(found).map(toBarcode);
  }

  get loaded(): boolean {
    return this.module.loaded.length > 0;
  }

  close(): Promise<void> {
    return this.module.closeAll();
  }
}

let wasmBinary: ArrayBuffer | undefined;

/**
 * The ZXing module is one per process (zxing-wasm keeps it globally): this returns it, instantiating it from
 * the shipped file if nobody holds it (another processor's idle release may have purged it meanwhile).
 */
function loadModule(): Promise<object> {
  if (!wasmBinary) {
    const wasm = readFileSync(
      path.join(path.dirname(require.resolve('zxing-wasm/reader')), '../../reader/zxing_reader.wasm'),
    );
    wasmBinary = wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.length) as ArrayBuffer;
  }
  // The same overrides object contents make zxing-wasm return the module it already has.
  return prepareZXingModule({ overrides: { wasmBinary }, fireImmediately: true });
}

/** A symbol with a checksum error is a finding; any other error (format, not found) is no barcode at all. */
function found(r: ReadResult): boolean {
  return r.isValid || r.error.startsWith('ChecksumError');
}

function toBarcode(r: ReadResult): Barcode {
  // ZXing reports a UPC-A as the EAN-13 it is (leading 0); the 12-digit UPC-A is what is printed.
  const upc = r.format === 'EAN13' && r.text.length === 13 && r.text.startsWith('0');
  const xs = [r.position.topLeft.x, r.position.topRight.x, r.position.bottomLeft.x, r.position.bottomRight.x];
  const ys = [r.position.topLeft.y, r.position.topRight.y, r.position.bottomLeft.y, r.position.bottomRight.y];
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return {
    format: upc ? 'UPC-A' : (NAMES[r.format] ?? (r.format as BarcodeFormat)),
    value: upc ? r.text.slice(1) : r.text,
    valid: r.isValid,
    ...(!r.isValid && { error: r.error.replace(/ @ .*$/, '') }),
    box: { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y },
  };
}
