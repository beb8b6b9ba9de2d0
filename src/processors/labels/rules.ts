import type { Barcode } from './barcodes.js';
import type { LabelFields } from './fields.js';
import { MARKETPLACES, type Category, type LabelField } from './marketplace-rules.js';

export interface Finding {
  /** Stable, e.g. `missing_net_quantity`, `barcode_check_digit`, `date_passed`. */
  code: string;
  severity: 'error' | 'warning';
  message: string;
  field?: LabelField;
  /** The marketplaces whose rules this finding is against; absent for checks that apply everywhere. */
  marketplaces?: string[];
  barcode?: string;
}

export interface RuleInput {
  fields: LabelFields;
  barcodes: Barcode[];
  category: Category;
  marketplaces: string[];
  /** Today as `YYYY-MM-DD`, for dates already past. */
  today: string;
}

/** Every finding for a label: the checks that always apply, then each field the named marketplaces want. */
export function evaluate(input: RuleInput): Finding[] {
  return [
    ...barcodeFindings(input.barcodes),
    ...dateFindings(input.fields, input.today),
    ...marketplaceFindings(input),
  ];
}

const GTIN_FORMATS = new Set(['EAN-13', 'UPC-A']);

/** The GTIN a barcode carries: an EAN/UPC, a GS1 element string `(01)...` or Digital Link `/01/...`, or bare digits. */
export function gtinOf(barcode: Barcode): string | undefined {
  if (GTIN_FORMATS.has(barcode.format)) return barcode.value;
  const gs1 = /(?:^\(01\)|^01|\/01\/)(\d{14})/.exec(barcode.value);
  if (gs1) return gs1[1];
  return /^(\d{8}|\d{12,14})$/.test(barcode.value) ? barcode.value : undefined;
}

export function gtinCheckDigitValid(gtin: string): boolean {
  const digits = [...gtin].map(Number);
  const check = digits.pop() as number;
  const sum = digits.reverse().reduce((acc, d, i) => acc + d * (i % 2 === 0 ? 3 : 1), 0);
  return (10 - (sum % 10)) % 10 === check;
}

function barcodeFindings(barcodes: Barcode[]): Finding[] {
  return barcodes.flatMap((b): Finding[] => {
    const gtin = gtinOf(b);
    if (b.valid && (gtin === undefined || gtinCheckDigitValid(gtin))) return [];
    return [
      {
        code: 'barcode_check_digit',
        severity: 'error',
        message: `the ${b.format} barcode ${b.value} has a wrong check digit; scanners and catalogues will refuse it`,
        barcode: b.value,
      },
    ];
  });
}

function dateFindings(fields: LabelFields, today: string): Finding[] {
  const date = fields.bestBefore?.date;
  // A month-only date (2027-12) lasts to the end of that month.
  if (!date || date >= today.slice(0, date.length)) return [];
  return [
    {
      code: 'date_passed',
      severity: 'error',
      field: 'bestBefore',
      message: `the ${fields.bestBefore?.kind} date ${date} has passed`,
    },
  ];
}

/** Which fields of the label are present, by the names the rules use. */
function presentFields(fields: LabelFields, barcodes: Barcode[]): Set<LabelField> {
  const present = new Set<LabelField>();
  if (barcodes.some((b) => gtinOf(b) !== undefined)) present.add('barcode');
  for (const name of ['netQuantity', 'bestBefore', 'lot', 'ingredients', 'manufacturer'] as const)
    if (fields[name]) present.add(name);
  if (fields.allergens) present.add('allergens');
  if (fields.marks.some((m) => m.mark === 'CE')) present.add('ceMark');
  if (fields.marks.some((m) => m.mark === 'recycling')) present.add('recyclingMark');
  return present;
}

function marketplaceFindings({ fields, barcodes, category, marketplaces }: RuleInput): Finding[] {
  const present = presentFields(fields, barcodes);
  const wanted = new Map<LabelField, { required: string[]; recommended: string[] }>();
  for (const id of marketplaces) {
    const rules = MARKETPLACES[id].categories;
    for (const lists of [rules['*'], rules[category]]) {
      for (const [level, names] of [
        ['required', lists?.required],
        ['recommended', lists?.recommended],
      ] as const) {
        for (const field of names ?? []) {
          const entry = wanted.get(field) ?? { required: [], recommended: [] };
          if (!entry[level].includes(id)) entry[level].push(id);
          wanted.set(field, entry);
        }
      }
    }
  }
  return [...wanted]
    .filter(([field]) => !present.has(field))
    .map(([field, by]) => {
      const required = by.required.length > 0;
      const names = (required ? by.required : by.recommended).map((id) => MARKETPLACES[id].name).join(', ');
      return {
        code: `missing_${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`,
        severity: required ? 'error' : 'warning',
        field,
        marketplaces: required ? by.required : by.recommended,
        message: `no ${DESCRIPTIONS[field]} found; ${names} ${required ? 'require' : 'recommend'} it for ${category}`,
      };
    });
}

const DESCRIPTIONS: Record<LabelField, string> = {
  barcode: 'GTIN barcode (EAN-13 or UPC-A)',
  netQuantity: 'net quantity with a unit',
  bestBefore: 'best-before, use-by or expiry date',
  lot: 'lot or batch number',
  ingredients: 'ingredients list',
  allergens: 'allergen information',
  manufacturer: "manufacturer's name and address",
  ceMark: 'CE mark',
  recyclingMark: 'recycling or disposal mark',
};
