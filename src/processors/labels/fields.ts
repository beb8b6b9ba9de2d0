import { ALLERGEN_WORDS } from './marketplace-rules.js';
import type { Box, OcrLine } from './ocr.js';

/**
 * Finds the regulated fields of a label in its OCR lines with plain patterns. OCR keeps a label's lines in
 * reading order, and every field of interest starts with a keyword ("Net weight", "Best before", "Lot"),
 * which is what these patterns anchor on.
 */

/** Where a field was read: the line's text and its box. */
export interface Found {
  text: string;
  box: Box;
}

export interface LabelFields {
  netQuantity?: Found & { value: number; unit: string };
  bestBefore?: Found & { kind: 'best-before' | 'use-by' | 'expiry'; date?: string };
  lot?: Found & { value: string };
  ingredients?: Found;
  allergens?: Partial<Found> & { named: string[] };
  manufacturer?: Found;
  marks: (Found & { mark: 'CE' | 'recycling' | 'e-mark' })[];
}

const NET_KEYWORD =
  /\b(net\s*(wt|weight|vol(ume)?|contents?|qty|quantity|mass)?|netto|poids\s+net|contents?|inhalt)\b|℮/i;
const QUANTITY = /(\d+(?:[.,]\d+)?)\s?(kg|mg|g|ml|cl|dl|l|fl\.?\s?oz|oz|lbs?)(?![a-z])/i;
const DATE_KEYWORD =
  /\b(best\s+before(\s+end)?|bbe|bb|use\s+by|consume\s+by|exp(iry|iration)?(\s+date)?|expires|mhd)\b/i;
const LOT = /\b(?:lot|batch)(?:\s*(?:no|nr|number|#))?\.?\s*[:#]?\s*([A-Z0-9][A-Z0-9/-]{2,})/i;
const INGREDIENTS = /^\W*ingredients?\b\s*[:-]?/i;
const ALLERGEN_STATEMENT = /\b(allergens?|allergy\s+advice|contains|may\s+contain)\b/i;
const MANUFACTURER =
  /\b((manufactured|produced|made|packed|distributed|imported)\s+(by|for)|manufacturer|importer|producer)\b/i;
const CE_MARK = /(^|[^A-Za-z])C\s?E([^A-Za-z]|$)/;
const RECYCLING = /recycl|\bWEEE\b|triman|green\s+dot|♻|do\s+not\s+dispose/i;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

export function findFields(lines: OcrLine[]): LabelFields {
  const at = (i: number): Found => ({ text: lines[i].text, box: lines[i].box });
  const fields: LabelFields = { marks: [] };
  lines.forEach((line, i) => {
    const text = line.text;
    const quantity = QUANTITY.exec(text);
    if (!fields.netQuantity && quantity && NET_KEYWORD.test(text)) {
      fields.netQuantity = { ...at(i), value: Number(quantity[1].replace(',', '.')), unit: normaliseUnit(quantity[2]) };
    }
    const dateKeyword = DATE_KEYWORD.exec(text);
    if (!fields.bestBefore && dateKeyword) {
      const date = parseDate(text.slice(dateKeyword.index + dateKeyword[0].length));
      fields.bestBefore = { ...at(i), kind: dateKind(dateKeyword[0]), ...(date && { date }) };
    }
    const lot = LOT.exec(text);
    if (!fields.lot && lot) fields.lot = { ...at(i), value: lot[1] };
    if (!fields.ingredients && INGREDIENTS.test(text)) fields.ingredients = continued(lines, i);
    if (!fields.allergens?.text && ALLERGEN_STATEMENT.test(text) && !INGREDIENTS.test(text)) {
      fields.allergens = { ...at(i), named: [] };
    }
    if (!fields.manufacturer && MANUFACTURER.test(text)) fields.manufacturer = continued(lines, i);
    if (CE_MARK.test(text)) fields.marks.push({ ...at(i), mark: 'CE' });
    if (RECYCLING.test(text)) fields.marks.push({ ...at(i), mark: 'recycling' });
    if (text.includes('℮')) fields.marks.push({ ...at(i), mark: 'e-mark' });
  });
  const named = namedAllergens(`${fields.ingredients?.text ?? ''} ${fields.allergens?.text ?? ''}`);
  if (named.length > 0 || fields.allergens) fields.allergens = { ...fields.allergens, named };
  return fields;
}

/** A field's line and the lines that continue it (a line ending in a comma, or an address under a name). */
function continued(lines: OcrLine[], start: number): Found {
  let end = start;
  while (end + 1 < lines.length && /[,;:-]$/.test(lines[end].text)) end++;
  const box = lines
    .slice(start, end + 1)
    .map((l) => l.box)
    .reduce(union);
  return {
    text: lines
      .slice(start, end + 1)
      .map((l) => l.text)
      .join(' '),
    box,
  };
}

function union(a: Box, b: Box): Box {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return {
    x,
    y,
    width: Math.max(a.x + a.width, b.x + b.width) - x,
    height: Math.max(a.y + a.height, b.y + b.height) - y,
  };
}

function normaliseUnit(unit: string): string {
  const u = unit.toLowerCase().replace(/\.|\s/g, '');
  return u === 'floz' ? 'fl oz' : u === 'lbs' ? 'lb' : u;
}

function dateKind(keyword: string): 'best-before' | 'use-by' | 'expiry' {
  const k = keyword.toLowerCase();
  if (/use|consume/.test(k)) return 'use-by';
  if (/exp/.test(k)) return 'expiry';
  return 'best-before';
}

const pad = (n: number) => String(n).padStart(2, '0');
const fullYear = (y: number) => (y < 100 ? 2000 + y : y);

/**
 * The first date in `text` as ISO `YYYY-MM-DD` or `YYYY-MM`. Numeric dates are read day first (as printed
 * in Europe) unless only month first makes sense (12/31/2027).
 */
export function parseDate(text: string): string | undefined {
  const iso = /(\d{4})[-./](\d{1,2})[-./](\d{1,2})/.exec(text);
  if (iso) return valid(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  const dmy = /(\d{1,2})[-./ ](\d{1,2})[-./ ](\d{2,4})\b/.exec(text);
  if (dmy) {
    const [a, b, y] = [Number(dmy[1]), Number(dmy[2]), fullYear(Number(dmy[3]))];
    return b > 12 ? valid(y, a, b) : valid(y, b, a);
  }
  const named = /(?:(\d{1,2})\s*)?([a-z]{3})[a-z]*\.?\s*(\d{4}|\d{2})\b/i.exec(text);
  const month = named ? MONTHS.indexOf(named[2].toLowerCase()) + 1 : 0;
  if (named && month > 0)
    return named[1]
      ? valid(fullYear(Number(named[3])), month, Number(named[1]))
      : `${fullYear(Number(named[3]))}-${pad(month)}`;
  const my = /\b(\d{1,2})[-./ ](\d{4})\b/.exec(text);
  if (my && Number(my[1]) >= 1 && Number(my[1]) <= 12) return `${my[2]}-${pad(Number(my[1]))}`;
  return undefined;
}

function valid(year: number, month: number, day: number): string | undefined {
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  return `${year}-${pad(month)}-${pad(day)}`;
}

function namedAllergens(text: string): string[] {
  const words = new Set(text.toLowerCase().match(/[a-z]+/g) ?? []);
  return ALLERGEN_WORDS.filter((w) => words.has(w));
}
