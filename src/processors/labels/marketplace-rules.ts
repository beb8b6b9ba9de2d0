/**
 * What each marketplace asks to see on a product label, by category: the rules of label-analysis as data.
 *
 * To change a rule, edit this file only: `fields.ts` finds the fields, `rules.ts` turns a missing field into a
 * finding. Each marketplace lists, per category, the fields that must be on the label (`required`) and those it
 * recommends (`recommended`); `*` applies to every category and is merged into the category's own list.
 * A missing required field is an `error` finding, a missing recommended one a `warning`.
 *
 * These lists are a practical summary of the sellers' guides and the EU/US labelling rules they point to
 * (EU 1169/2011 for food, EC 1223/2009 for cosmetics, CE and WEEE marking for electronics and toys, GTINs
 * for catalogue matching); they are not legal advice. Checks that apply whatever the marketplace (a
 * barcode's check digit, a date already past) live in `rules.ts` and are always run.
 */

/** The fields `fields.ts` can find on a label. */
export const LABEL_FIELDS = [
  'barcode', // a GTIN: EAN-13 or UPC-A (or a GS1 code carrying one)
  'netQuantity', // quantity with a unit: 250 g, 1.5 l, 12 fl oz
  'bestBefore', // best-before, use-by or expiry date
  'lot', // lot or batch number
  'ingredients', // the ingredients line
  'allergens', // an allergen statement ("Contains: milk") or allergens named in the ingredients
  'manufacturer', // name and address of the manufacturer, packer or importer
  'ceMark', // CE conformity mark, as text "CE"
  'recyclingMark', // recycling or disposal information (recyclable, WEEE, Triman, the Green Dot)
] as const;

export type LabelField = (typeof LABEL_FIELDS)[number];

export const CATEGORIES = ['food', 'beverages', 'cosmetics', 'supplements', 'electronics', 'toys', 'other'] as const;
export type Category = (typeof CATEGORIES)[number];

interface FieldLists {
  required?: LabelField[];
  recommended?: LabelField[];
}

export interface MarketplaceRules {
  name: string;
  categories: Partial<Record<Category | '*', FieldLists>>;
}

const FOOD: FieldLists = {
  required: ['netQuantity', 'bestBefore', 'ingredients', 'allergens', 'manufacturer'],
  recommended: ['lot'],
};

export const MARKETPLACES: Record<string, MarketplaceRules> = {
  amazon: {
    name: 'Amazon',
    categories: {
      '*': { required: ['barcode'] },
      food: { ...FOOD, required: [...FOOD.required!, 'lot'], recommended: [] },
      beverages: FOOD,
      supplements: { required: ['netQuantity', 'bestBefore', 'ingredients', 'manufacturer', 'lot'] },
      cosmetics: { required: ['ingredients', 'manufacturer', 'lot'], recommended: ['netQuantity', 'bestBefore'] },
      electronics: { required: ['manufacturer', 'ceMark', 'recyclingMark'] },
      toys: { required: ['manufacturer', 'ceMark', 'lot'] },
    },
  },
  walmart: {
    name: 'Walmart',
    categories: {
      '*': { required: ['barcode'] },
      food: FOOD,
      beverages: FOOD,
      supplements: { required: ['netQuantity', 'ingredients', 'manufacturer'], recommended: ['bestBefore', 'lot'] },
      cosmetics: { required: ['netQuantity', 'ingredients', 'manufacturer'] },
      electronics: { required: ['manufacturer'] },
      toys: { required: ['manufacturer'], recommended: ['lot'] },
    },
  },
  ebay: {
    name: 'eBay',
    categories: {
      '*': { recommended: ['barcode'] },
      food: { required: ['netQuantity', 'bestBefore', 'ingredients', 'allergens'], recommended: ['manufacturer'] },
      beverages: { required: ['netQuantity', 'bestBefore', 'ingredients', 'allergens'] },
      cosmetics: { required: ['ingredients'], recommended: ['manufacturer', 'bestBefore'] },
      electronics: { required: ['ceMark'], recommended: ['manufacturer', 'recyclingMark'] },
      toys: { required: ['ceMark'], recommended: ['manufacturer'] },
    },
  },
  etsy: {
    name: 'Etsy',
    categories: {
      food: { required: ['ingredients', 'allergens', 'netQuantity'], recommended: ['bestBefore', 'manufacturer'] },
      cosmetics: { required: ['ingredients'], recommended: ['manufacturer'] },
      toys: { required: ['ceMark', 'manufacturer'] },
    },
  },
  otto: {
    name: 'OTTO',
    categories: {
      '*': { required: ['barcode', 'manufacturer'] },
      food: { ...FOOD, recommended: ['lot'] },
      beverages: FOOD,
      cosmetics: { required: ['netQuantity', 'ingredients', 'bestBefore', 'lot'] },
      electronics: { required: ['ceMark', 'recyclingMark'] },
      toys: { required: ['ceMark', 'lot'] },
    },
  },
};

/** Allergens the EU requires to be emphasised (Annex II of 1169/2011), and the words that name them. */
export const ALLERGEN_WORDS = [
  'gluten',
  'wheat',
  'rye',
  'barley',
  'oats',
  'spelt',
  'crustaceans',
  'shrimp',
  'egg',
  'eggs',
  'fish',
  'peanut',
  'peanuts',
  'soy',
  'soya',
  'milk',
  'lactose',
  'nuts',
  'almond',
  'almonds',
  'hazelnut',
  'hazelnuts',
  'walnut',
  'walnuts',
  'cashew',
  'pecan',
  'pistachio',
  'celery',
  'mustard',
  'sesame',
  'sulphites',
  'sulfites',
  'lupin',
  'molluscs',
];
