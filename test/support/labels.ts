import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';
import { prepareZXingModule, writeBarcode } from 'zxing-wasm/writer';

/**
 * Product-label images for the label-analysis tests and benchmark: SVG text in DejaVu Sans and real barcodes,
 * rendered by sharp. EAN-13 and UPC-A bars are computed here from the standard's digit patterns (so a wrong
 * check digit can be drawn on purpose); QR, DataMatrix and Code 128 come from zxing-wasm's writer.
 */

const L_CODES = [
  '0001101',
  '0011001',
  '0010011',
  '0111101',
  '0100011',
  '0110001',
  '0101111',
  '0111011',
  '0110111',
  '0001011',
];
const invert = (bits: string) => [...bits].map((b) => (b === '1' ? '0' : '1')).join('');
const R_CODES = L_CODES.map(invert);
const G_CODES = R_CODES.map((bits) => [...bits].reverse().join(''));
// Which of the left six digits use the G (even) set, by the first digit of an EAN-13.
const PARITY = ['LLLLLL', 'LLGLGG', 'LLGGLG', 'LLGGGL', 'LGLLGG', 'LGGLLG', 'LGGGLL', 'LGLGLG', 'LGLGGL', 'LGGLGL'];

/** The 95 modules of an EAN-13 (13 digits as given, check digit not recomputed); UPC-A is EAN-13 with a leading 0. */
export function ean13Modules(code: string): string {
  if (!/^\d{13}$/.test(code)) throw new Error(`EAN-13 needs 13 digits, got ${code}`);
  const digits = [...code].map(Number);
  const parity = PARITY[digits[0]];
  const left = digits
    .slice(1, 7)
    .map((d, i) => (parity[i] === 'L' ? L_CODES[d] : G_CODES[d]))
    .join('');
  const right = digits
    .slice(7)
    .map((d) => R_CODES[d])
    .join('');
  return `101${left}01010${right}101`;
}

/** An EAN-13 or UPC-A (12 digits) as SVG rectangles at (x, y), `module` px wide, with its quiet zone. */
export function eanSvg(code: string, x: number, y: number, module = 4, height = 120): string {
  const modules = ean13Modules(code.length === 12 ? `0${code}` : code);
  const quiet = 11 * module;
  const bars = [...modules]
    .map((bit, i) =>
      bit === '1' ? `<rect x="${x + quiet + i * module}" y="${y}" width="${module}" height="${height}"/>` : '',
    )
    .join('');
  return `<rect x="${x}" y="${y}" width="${modules.length * module + 2 * quiet}" height="${height}" fill="white"/><g fill="black">${bars}</g>`;
}

const require = createRequire(import.meta.url);
let writerReady: Promise<unknown> | undefined;

/** A QR code, DataMatrix or Code 128 from zxing-wasm's writer, as an SVG fragment placed at (x, y), `size` px. */
export async function zxingSvg(
  format: 'QRCode' | 'DataMatrix' | 'Code128',
  text: string,
  x: number,
  y: number,
  width: number,
  height = width,
) {
  writerReady ??= prepareZXingModule({
    overrides: {
      wasmBinary: readFileSync(
        path.join(path.dirname(require.resolve('zxing-wasm/writer')), '../../writer/zxing_writer.wasm'),
      ).buffer as ArrayBuffer,
    },
    fireImmediately: true,
  });
  await writerReady;
  const written = await writeBarcode(text, { format, withQuietZones: true, scale: 0 });
  if (written.error) throw new Error(`zxing writer: ${written.error}`);
  const inner = written.svg.replace(/^[\s\S]*?<svg([^>]*)>/, '').replace(/<\/svg>\s*$/, '');
  const root = /<svg[^>]*>/.exec(written.svg)?.[0] ?? '';
  const viewBox =
    /viewBox="([^"]+)"/.exec(root)?.[1] ?? `0 0 ${/width="(\d+)/.exec(root)?.[1]} ${/height="(\d+)/.exec(root)?.[1]}`;
  return `<rect x="${x}" y="${y}" width="${width}" height="${height}" fill="white"/><svg x="${x}" y="${y}" width="${width}" height="${height}" viewBox="${viewBox}" preserveAspectRatio="none" shape-rendering="crispEdges">${inner}</svg>`;
}

export interface LabelSpec {
  /** Lines of text, top to bottom. */
  lines: string[];
  /** SVG fragments (barcodes) placed below the text. */
  codes?: { svg: string; height: number }[];
  width?: number;
  fontSize?: number;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders a label: black DejaVu Sans text lines on white, then the barcodes, as PNG. */
export async function renderLabel(spec: LabelSpec): Promise<Buffer> {
  const width = spec.width ?? 1000;
  const fontSize = spec.fontSize ?? 30;
  const lineHeight = Math.round(fontSize * 1.6);
  const text = spec.lines
    .map(
      (line, i) =>
        `<text x="40" y="${60 + i * lineHeight}" font-family="DejaVu Sans" font-size="${fontSize}">${escapeXml(line)}</text>`,
    )
    .join('');
  let y = 60 + spec.lines.length * lineHeight;
  const codes = (spec.codes ?? []).map((c) => {
    const placed = `<g transform="translate(40 ${y})">${c.svg}</g>`;
    y += c.height + 40;
    return placed;
  });
  const height = y + 20;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}${codes.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Levenshtein distance over characters, divided by the reference's length. */
export function characterErrorRate(reference: string, hypothesis: string): number {
  let previous = Array.from({ length: hypothesis.length + 1 }, (_, j) => j);
  for (let i = 1; i <= reference.length; i++) {
    const current = [i];
    for (let j = 1; j <= hypothesis.length; j++) {
      const substitution = previous[j - 1] + (reference[i - 1] === hypothesis[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[hypothesis.length] / Math.max(1, reference.length);
}

export const CLEAN_LINES = [
  'Organic Oat Biscuits',
  'Net weight 250 g',
  'Best before 31/12/2030',
  'Lot L2345A',
  'Ingredients: oat flour, sugar, butter (milk), salt',
  'Contains: milk, oats',
  'Manufactured by Pixq Foods Ltd,',
  '1 Mill Lane, Leeds LS1 4AP, UK',
  'CE  Recyclable packaging',
];

export const EAN_13 = '4006381333931';
export const UPC_A = '036000291452';

/**
 * A clean food label: every field the food rules ask for, and one barcode of each supported format
 * (values returned so the test compares what was decoded with what was drawn).
 */
export async function cleanLabel(width = 1000) {
  const codes = {
    'EAN-13': EAN_13,
    'UPC-A': UPC_A,
    'Code 128': 'PIXQ-12345',
    'QR Code': 'https://example.com/p/oat-biscuits',
    DataMatrix: 'LOT L2345A',
  };
  const png = await renderLabel({
    width,
    lines: CLEAN_LINES,
    codes: [
      { svg: eanSvg(codes['EAN-13'], 0, 0), height: 120 },
      { svg: eanSvg(codes['UPC-A'], 0, 0), height: 120 },
      { svg: await zxingSvg('Code128', codes['Code 128'], 0, 0, 400, 100), height: 100 },
      { svg: await zxingSvg('QRCode', codes['QR Code'], 0, 0, 200), height: 200 },
      { svg: await zxingSvg('DataMatrix', codes.DataMatrix, 0, 0, 160), height: 160 },
    ],
  });
  return { png, codes };
}

/** A food label with three planted defects: no net quantity, a best-before date in 2020, an EAN-13 whose check digit is wrong. */
export async function defectiveLabel() {
  const wrong = EAN_13.slice(0, 12) + ((Number(EAN_13[12]) + 1) % 10);
  const png = await renderLabel({
    lines: CLEAN_LINES.filter((l) => !l.startsWith('Net weight')).map((l) =>
      l.startsWith('Best before') ? 'Best before 15/03/2020' : l,
    ),
    codes: [{ svg: eanSvg(wrong, 0, 0), height: 120 }],
  });
  return { png, wrongEan: wrong };
}
