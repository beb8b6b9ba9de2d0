import sharp from 'sharp';

/**
 * Product-photo-like test scenes with a known mask: an object drawn in SVG (gradients, stripes, holes, thin
 * parts) over a studio-like background with a soft shadow and sensor noise. The truth mask is the same object
 * markup rendered white on black, so it matches the picture exactly. Coordinates are in a 1000 x 750 frame
 * scaled to the requested size, so any resolution shows the same scene.
 */
export interface Scene {
  name: string;
  /** JPEG bytes. */
  image: Buffer;
  /** One byte per pixel, 255 on the object, 0 elsewhere (anti-aliased edges cut at half). */
  mask: Uint8Array;
  width: number;
  height: number;
  /** A region (in pixels) covering only a thin part of the object, when it has one. */
  thin?: { left: number; top: number; width: number; height: number };
}

interface ObjectSpec {
  markup: string;
  /** y of the ground contact, for the shadow. */
  ground: number;
  halfWidth: number;
  thin?: [x: number, y: number, w: number, h: number];
}

const OBJECTS: Record<string, ObjectSpec> = {
  bottle: {
    markup: `<path d="M455 170h90v60q0 30 40 70q25 30 25 80v260q0 30-30 30h-160q-30 0-30-30v-260q0-50 25-80q40-40 40-70z" fill="url(#p0)"/>
      <rect x="450" y="130" width="100" height="50" rx="8" fill="url(#p1)"/>
      <rect x="400" y="420" width="200" height="140" fill="url(#p2)"/>`,
    ground: 670,
    halfWidth: 120,
  },
  mug: {
    markup: `<path d="M380 300h210v250q0 50-50 50h-110q-50 0-50-50z" fill="url(#p0)"/>
      <path d="M585 360c95 0 95 175 0 175" stroke="url(#p1)" stroke-width="34" fill="none"/>
      <rect x="380" y="390" width="210" height="60" fill="url(#p2)"/>`,
    ground: 600,
    halfWidth: 160,
  },
  ball: {
    markup: `<clipPath id="ballclip"><circle cx="500" cy="420" r="170"/></clipPath>
      <circle cx="500" cy="420" r="170" fill="url(#p0)"/>
      <g clip-path="url(#ballclip)"><path d="M300 330c120 60 280 60 400 0v60c-120 60-280 60-400 0z" fill="url(#p2)"/></g>`,
    ground: 590,
    halfWidth: 170,
  },
  handbag: {
    markup: `<path d="M410 385C410 190 590 190 590 385" stroke="url(#p1)" stroke-width="10" fill="none"/>
      <path d="M360 380h280l40 260h-360z" fill="url(#p0)"/>
      <rect x="360" y="430" width="280" height="26" fill="url(#p2)"/>`,
    ground: 640,
    halfWidth: 180,
    thin: [480, 225, 40, 20],
  },
  lamp: {
    markup: `<path d="M420 180h160l60 150h-280z" fill="url(#p0)"/>
      <rect x="493" y="330" width="14" height="270" fill="url(#p1)"/>
      <ellipse cx="500" cy="612" rx="110" ry="26" fill="url(#p1)"/>`,
    ground: 630,
    halfWidth: 140,
    thin: [490, 420, 20, 100],
  },
  sneaker: {
    markup: `<path d="M300 560C300 470 360 430 420 420L520 330C560 300 600 320 610 360C640 430 700 450 740 470C780 490 790 540 770 560Z" fill="url(#p0)"/>
      <path d="M290 556h492c6 30-8 44-40 44H312c-22 0-28-20-22-44z" fill="url(#p1)"/>
      <path d="M470 400l60 40M495 375l60 40M520 352l55 38" stroke="url(#p2)" stroke-width="12"/>`,
    ground: 600,
    halfWidth: 250,
  },
  book: {
    markup: `<g transform="rotate(-12 500 420)"><rect x="360" y="250" width="280" height="340" rx="6" fill="url(#p0)"/>
      <rect x="360" y="250" width="34" height="340" fill="url(#p1)"/>
      <rect x="420" y="300" width="180" height="60" fill="url(#p2)"/></g>`,
    ground: 620,
    halfWidth: 190,
  },
  headphones: {
    markup: `<path d="M385 470V400C385 230 615 230 615 400V470" stroke="url(#p0)" stroke-width="30" fill="none"/>
      <rect x="345" y="430" width="80" height="150" rx="30" fill="url(#p1)"/>
      <rect x="575" y="430" width="80" height="150" rx="30" fill="url(#p1)"/>`,
    ground: 600,
    halfWidth: 160,
  },
  vase: {
    markup: `<path d="M450 200h100c0 60-30 80-30 120c0 60 110 100 110 190c0 60-40 90-80 90h-100c-40 0-80-30-80-90c0-90 110-130 110-190c0-40-30-60-30-120z" fill="url(#p2)"/>
      <rect x="445" y="190" width="110" height="22" rx="6" fill="url(#p1)"/>`,
    ground: 600,
    halfWidth: 130,
  },
  camera: {
    markup: `<rect x="330" y="330" width="340" height="230" rx="26" fill="url(#p0)"/>
      <path d="M420 330l24-48h112l24 48z" fill="url(#p1)"/>
      <circle cx="500" cy="448" r="92" fill="url(#p1)"/>
      <circle cx="500" cy="448" r="62" fill="url(#p2)"/>
      <rect x="600" y="350" width="44" height="24" rx="6" fill="url(#p2)"/>`,
    ground: 560,
    halfWidth: 170,
  },
};

const PALETTES: [string, string, string][] = [
  ['#c0392b', '#7b241c', '#f5b7b1'],
  ['#1f4e99', '#12305e', '#aed6f1'],
  ['#b8621b', '#5c3310', '#f8c471'],
  ['#2e7d32', '#1b4d1e', '#a9dfbf'],
  ['#2b2b2b', '#0f0f0f', '#9a9a9a'],
  ['#f1c40f', '#9a7d0a', '#fdfefe'],
  ['#6c3483', '#4a235a', '#d7bde2'],
  ['#e8e8e8', '#9e9e9e', '#5d6d7e'],
];

const BACKGROUNDS: Record<string, string> = {
  studio: `<linearGradient id="bg" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#f4f4f4"/><stop offset="1" stop-color="#d9d9d9"/></linearGradient><rect width="1000" height="750" fill="url(#bg)"/>`,
  pastel: `<linearGradient id="bg" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#f6d5c8"/><stop offset="1" stop-color="#f1ece4"/></linearGradient><rect width="1000" height="750" fill="url(#bg)"/>`,
  table: `<pattern id="wood" width="1000" height="36" patternUnits="userSpaceOnUse"><rect width="1000" height="36" fill="#a0703f"/><rect y="24" width="1000" height="12" fill="#8a5d31"/></pattern>
    <rect width="1000" height="560" fill="#dfe6ea"/><rect y="560" width="1000" height="190" fill="url(#wood)"/>`,
  dark: `<radialGradient id="bg" cx="0.5" cy="0.45" r="0.7"><stop offset="0" stop-color="#5a5a5a"/><stop offset="1" stop-color="#1e1e1e"/></radialGradient><rect width="1000" height="750" fill="url(#bg)"/>`,
  tiles: `<pattern id="tile" width="100" height="100" patternUnits="userSpaceOnUse"><rect width="100" height="100" fill="#e9e4da"/><rect width="50" height="50" fill="#d8d1c4"/><rect x="50" y="50" width="50" height="50" fill="#d8d1c4"/></pattern><rect width="1000" height="750" fill="url(#tile)"/>`,
  bokeh: `<filter id="soft"><feGaussianBlur stdDeviation="30"/></filter><rect width="1000" height="750" fill="#cfd8dc"/>
    <g filter="url(#soft)" opacity="0.7"><circle cx="150" cy="160" r="110" fill="#ffe0b2"/><circle cx="850" cy="200" r="140" fill="#b3e5fc"/><circle cx="820" cy="640" r="120" fill="#c8e6c9"/><circle cx="120" cy="620" r="90" fill="#f8bbd0"/></g>`,
};

interface Layout {
  object: keyof typeof OBJECTS;
  background: keyof typeof BACKGROUNDS;
  palette: number;
  dx: number;
  scale: number;
}

// Chosen so that every object sits on a background it contrasts with, as in a product photo.
const LAYOUTS: Layout[] = [
  { object: 'bottle', background: 'studio', palette: 2, dx: 0, scale: 1 },
  { object: 'mug', background: 'table', palette: 0, dx: -120, scale: 0.95 },
  { object: 'ball', background: 'pastel', palette: 1, dx: 140, scale: 0.9 },
  { object: 'handbag', background: 'studio', palette: 4, dx: 0, scale: 1.05 },
  { object: 'lamp', background: 'bokeh', palette: 5, dx: -60, scale: 1 },
  { object: 'sneaker', background: 'tiles', palette: 6, dx: 0, scale: 0.95 },
  { object: 'book', background: 'dark', palette: 7, dx: 90, scale: 1 },
  { object: 'headphones', background: 'pastel', palette: 4, dx: -80, scale: 1.05 },
  { object: 'vase', background: 'dark', palette: 5, dx: 50, scale: 1.05 },
  { object: 'camera', background: 'studio', palette: 3, dx: 0, scale: 1 },
  { object: 'bottle', background: 'bokeh', palette: 0, dx: 150, scale: 0.85 },
  { object: 'mug', background: 'tiles', palette: 1, dx: 60, scale: 1.1 },
];

export const SCENE_COUNT = LAYOUTS.length;

function paints([base, dark, light]: [string, string, string], mask: boolean): string {
  if (mask)
    return [0, 1, 2, 3]
      .map((i) => `<linearGradient id="p${i}"><stop offset="0" stop-color="#fff"/></linearGradient>`)
      .join('');
  return `<linearGradient id="p0" x1="0" y1="0" x2="1" y2="0"><stop offset="0" stop-color="${dark}"/><stop offset="0.45" stop-color="${base}"/><stop offset="0.7" stop-color="${light}" stop-opacity="0.9"/><stop offset="1" stop-color="${dark}"/></linearGradient>
    <linearGradient id="p1" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${dark}"/><stop offset="1" stop-color="${base}"/></linearGradient>
    <linearGradient id="p3" x1="0" y1="0" x2="1" y2="0"><stop offset="0" stop-color="#8e4a2b"/><stop offset="0.5" stop-color="#c8744a"/><stop offset="1" stop-color="#7a3d22"/></linearGradient>
    <pattern id="p2" width="24" height="24" patternUnits="userSpaceOnUse" patternTransform="rotate(35)"><rect width="24" height="24" fill="${base}"/><rect width="10" height="24" fill="${light}"/></pattern>`;
}

/** `picture`: the scene; `mask`: the object white on black; `background`: the scene without the object; `foreground`: the object on its own base colour. */
type Layer = 'picture' | 'mask' | 'background' | 'foreground';

function svg(layout: Layout, width: number, height: number, layer: Layer): string {
  const object = OBJECTS[layout.object];
  const place = `translate(${500 + layout.dx} ${object.ground}) scale(${layout.scale}) translate(-500 -${object.ground})`;
  const shadow = `<filter id="shadow"><feGaussianBlur stdDeviation="14"/></filter>
    <ellipse cx="500" cy="${object.ground}" rx="${object.halfWidth * 1.1}" ry="22" fill="#000" opacity="0.28" filter="url(#shadow)"/>`;
  const mask = layer === 'mask';
  const scenery = {
    mask: '<rect width="1000" height="750" fill="#000"/>',
    foreground: `<rect width="1000" height="750" fill="${PALETTES[layout.palette][0]}"/>`,
    picture: `${BACKGROUNDS[layout.background]}<g transform="${place}">${shadow}</g>`,
    background: `${BACKGROUNDS[layout.background]}<g transform="${place}">${shadow}</g>`,
  }[layer];
  const drawn = layer === 'background' ? '' : `<g transform="${place}">${object.markup}</g>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 1000 750" preserveAspectRatio="none">
    <defs>${paints(PALETTES[layout.palette], mask)}</defs>${scenery}${drawn}</svg>`;
}

const render = (layout: Layout, width: number, height: number, layer: Layer) =>
  sharp(Buffer.from(svg(layout, width, height, layer)))
    .removeAlpha()
    .raw()
    .toBuffer();

export async function syntheticScene(index: number, width = 640, height = 480): Promise<Scene> {
  const layout = LAYOUTS[index % LAYOUTS.length];
  const image = await withNoise(await render(layout, width, height, 'picture'), width, height);
  const grey = await sharp(Buffer.from(svg(layout, width, height, 'mask')))
    .extractChannel(0)
    .raw()
    .toBuffer();
  const mask = Uint8Array.from(grey, (v) => (v >= 128 ? 255 : 0));
  return {
    name: `${layout.object}-on-${layout.background}`,
    image,
    mask,
    width,
    height,
    thin: thinRegion(layout, width, height),
  };
}

/** Sensor-like noise, then JPEG: what a camera hands over. */
async function withNoise(picture: Buffer, width: number, height: number): Promise<Buffer> {
  const raw = { width, height, channels: 3 as const };
  const noise = await sharp({
    create: { ...raw, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 18 } },
  })
    .raw()
    .toBuffer();
  return sharp(picture, { raw })
    .composite([{ input: noise, raw, blend: 'soft-light' }])
    .jpeg({ quality: 90 })
    .toBuffer();
}

export interface SoftScene {
  name: string;
  /** JPEG bytes: the object composited over the background with `alpha`, as a camera sees a soft edge. */
  image: Buffer;
  /** The true alpha, one byte per pixel, soft at the edge (the object's shape blurred by `softness`). */
  alpha: Uint8Array;
  width: number;
  height: number;
}

/**
 * A scene whose object has a soft edge with a known alpha (as fur, hair or a defocused edge give): the picture is
 * exactly foreground·alpha + background·(1 - alpha), with the alpha the object's shape blurred by `softness` pixels.
 */
export async function softScene(index: number, width = 640, height = 480, softness = 4): Promise<SoftScene> {
  const layout = LAYOUTS[index % LAYOUTS.length];
  const [foreground, background] = await Promise.all([
    render(layout, width, height, 'foreground'),
    render(layout, width, height, 'background'),
  ]);
  const alpha = await sharp(Buffer.from(svg(layout, width, height, 'mask')))
    .extractChannel(0)
    .blur(softness)
    .raw()
    .toBuffer();
  const picture = Buffer.alloc(width * height * 3);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i] / 255;
    for (let c = 0; c < 3; c++)
      picture[i * 3 + c] = Math.round(foreground[i * 3 + c] * a + background[i * 3 + c] * (1 - a));
  }
  const image = await withNoise(picture, width, height);
  return { name: `soft-${layout.object}-on-${layout.background}`, image, alpha: new Uint8Array(alpha), width, height };
}

/** Mean absolute difference of two alpha planes, in 0..255 units; `where` limits it to some pixels. */
export function meanAlphaError(alpha: Uint8Array, truth: Uint8Array, where?: (i: number) => boolean): number {
  if (alpha.length !== truth.length) throw new Error(`size mismatch: ${alpha.length} vs ${truth.length}`);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < alpha.length; i++) {
    if (where && !where(i)) continue;
    sum += Math.abs(alpha[i] - truth[i]);
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

function thinRegion(layout: Layout, width: number, height: number): Scene['thin'] {
  const object = OBJECTS[layout.object];
  if (!object.thin) return undefined;
  const [x, y, w, h] = object.thin;
  const sx = width / 1000;
  const sy = height / 750;
  const fx = (v: number) => (500 + layout.dx + (v - 500) * layout.scale) * sx;
  const fy = (v: number) => (object.ground + (v - object.ground) * layout.scale) * sy;
  const left = Math.floor(fx(x));
  const top = Math.floor(fy(y));
  return { left, top, width: Math.ceil(fx(x + w)) - left, height: Math.ceil(fy(y + h)) - top };
}

/** Intersection over union of `alpha >= threshold` against a 0/255 truth mask. */
export function iou(alpha: Uint8Array, truth: Uint8Array, threshold = 128): number {
  if (alpha.length !== truth.length) throw new Error(`size mismatch: ${alpha.length} vs ${truth.length}`);
  let both = 0;
  let either = 0;
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i] >= threshold;
    const t = truth[i] >= 128;
    if (a && t) both++;
    if (a || t) either++;
  }
  return either === 0 ? 1 : both / either;
}

/** The alpha channel of an encoded image (255 everywhere when it has none). */
export async function alphaOf(encoded: Buffer): Promise<Uint8Array> {
  const { data, info } = await sharp(encoded)
    .ensureAlpha()
    .extractChannel(3)
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new Error(`expected one channel, got ${info.channels}`);
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
