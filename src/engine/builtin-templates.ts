/**
 * The templates every vendor has, by name (the dashboard offers them by these names). Each must stay a valid
 * submission of its type: test/api/templates.test.ts submits every one. They are not stored: changing one
 * here changes it for everybody at the next start, and nobody can edit or delete them through the API.
 */
export const BUILT_IN_TEMPLATES: readonly { name: string; type: string; options: Record<string, unknown> }[] = [
  // A product photo cut out and flattened onto white, as marketplaces ask for.
  { name: 'product-cutout-white', type: 'remove-background', options: { background: '#ffffff' } },
  // A marketplace's main image (Amazon's rules): the product on pure white, its larger side 85 % of a 2000 px square,
  // centred, as JPEG.
  {
    name: 'marketplace-main-white',
    type: 'remove-background',
    options: { background: '#ffffff', scale: 85, canvas: { width: 2000, height: 2000 }, format: 'jpeg' },
  },
  // A 35 mm x 45 mm passport or ID photo: exactly one face, 413 x 531 px (300 dpi), JPEG.
  {
    name: 'id-photo-35x45',
    type: 'face-crop',
    options: { aspect: '35:45', size: 413, select: 'single', format: 'jpeg' },
  },
  // Fits inside 400 x 400: the long side is 400 px (smaller images are enlarged), the aspect kept.
  { name: 'thumbnail-400', type: 'transform', options: { resize: { width: 400, height: 400, fit: 'inside' } } },
];
