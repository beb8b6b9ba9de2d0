import sharp from 'sharp';

/**
 * Composites whose subject colour and alpha are known everywhere, for judging colour decontamination: the
 * picture is exactly alpha·F + (1 − alpha)·B per pixel, with F a subject colour field and B a saturated
 * background whose colour would show as a fringe. Three kinds of soft edge: hair-like strands (thin
 * anti-aliased curves around a head), motion blur (a product's shape smeared sideways) and glass (a see-through
 * body with a denser rim).
 */
export interface Composite {
  name: string;
  width: number;
  height: number;
  /** The picture as RGB bytes (no noise, no JPEG: decontamination is judged alone). */
  rgb: Uint8Array;
  /** The true subject colour at every pixel, RGB bytes. */
  foreground: Uint8Array;
  /** The true alpha, one byte per pixel. */
  alpha: Uint8Array;
  /** The same picture as PNG bytes, for processors. */
  png: Buffer;
}

interface Spec {
  name: string;
  /** SVG markup of the subject's shape, drawn white on black: its coverage is the alpha (before `blur`). */
  shape: (w: number, h: number) => string;
  /** The subject's colour field, full frame. */
  colour: (w: number, h: number) => string;
  /** The saturated background, full frame. */
  background: string;
  /** Extra softening of the alpha: a horizontal box smear (motion) or a Gaussian sigma. */
  smear?: number;
  sigma?: number;
}

/** Curved strands from the crown of a head outward, like loose hair, each under two pixels wide. */
function strands(w: number, h: number): string {
  const cx = w / 2;
  const cy = h * 0.55;
  const lines: string[] = [];
  for (let i = 0; i < 90; i++) {
    const angle = Math.PI * (1.05 + (0.9 * i) / 89);
    const reach = 0.22 + 0.12 * Math.abs(Math.sin(i * 1.7));
    const [x0, y0] = [cx + Math.cos(angle) * w * 0.16, cy + Math.sin(angle) * h * 0.3];
    const [x1, y1] = [cx + Math.cos(angle) * w * reach * 1.4, cy + Math.sin(angle) * h * reach * 1.9];
    const bend = (i % 2 === 0 ? 1 : -1) * w * 0.04;
    const width = 0.6 + (i % 5) * 0.25;
    lines.push(
      `<path d="M${x0} ${y0} Q${(x0 + x1) / 2 + bend} ${(y0 + y1) / 2} ${x1} ${y1}" stroke="#fff" stroke-width="${width}" fill="none"/>`,
    );
  }
  return `<ellipse cx="${cx}" cy="${cy}" rx="${w * 0.17}" ry="${h * 0.31}" fill="#fff"/>${lines.join('')}`;
}

const SPECS: Spec[] = [
  {
    name: 'hair-strands-on-green',
    shape: strands,
    colour: () =>
      `<linearGradient id="f" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#6b4226"/><stop offset="0.5" stop-color="#b07a4a"/><stop offset="1" stop-color="#3d2414"/></linearGradient><rect width="100%" height="100%" fill="url(#f)"/>`,
    background: '#00c800',
  },
  {
    name: 'motion-blur-on-magenta',
    shape: (w, h) =>
      `<rect x="${w * 0.3}" y="${h * 0.25}" width="${w * 0.4}" height="${h * 0.5}" rx="${w * 0.05}" fill="#fff"/>`,
    colour: () =>
      `<linearGradient id="f" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#f39c12"/><stop offset="1" stop-color="#fdebd0"/></linearGradient><rect width="100%" height="100%" fill="url(#f)"/>`,
    background: '#e000e0',
    smear: 25,
  },
  {
    name: 'glass-on-blue',
    shape: (w, h) =>
      `<path d="M${w * 0.4} ${h * 0.12}h${w * 0.2}v${h * 0.18}q${w * 0.08} ${h * 0.06} ${w * 0.08} ${h * 0.2}v${h * 0.36}h-${w * 0.36}v-${h * 0.36}q0 -${h * 0.14} ${w * 0.08} -${h * 0.2}z" fill="#fff" fill-opacity="0.35" stroke="#fff" stroke-opacity="0.9" stroke-width="${w * 0.012}"/>`,
    colour: () =>
      `<linearGradient id="f" x1="0" y1="0" x2="1" y2="0"><stop offset="0" stop-color="#d6f5ef"/><stop offset="0.6" stop-color="#ffffff"/><stop offset="1" stop-color="#a3d9cf"/></linearGradient><rect width="100%" height="100%" fill="url(#f)"/>`,
    background: '#0030ff',
    sigma: 1.2,
  },
];

export const COMPOSITE_NAMES = SPECS.map((s) => s.name);

const svg = (w: number, h: number, body: string) =>
  Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><defs/>${body}</svg>`);

async function renderRgb(w: number, h: number, body: string): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp(svg(w, h, body))
      .removeAlpha()
      .raw()
      .toBuffer(),
  );
}

async function renderAlpha(spec: Spec, w: number, h: number): Promise<Uint8Array> {
  let shape = sharp(svg(w, h, `<rect width="100%" height="100%" fill="#000"/>${spec.shape(w, h)}`)).extractChannel(0);
  if (spec.smear) {
    // sharp wants a kernel at least 3 high: the smear is its middle row.
    const row = (v: number) => Array.from({ length: spec.smear! }, () => v);
    const kernel = { width: spec.smear, height: 3, kernel: [...row(0), ...row(1), ...row(0)] };
    shape = sharp(await shape.raw().toBuffer(), { raw: { width: w, height: h, channels: 1 } }).convolve(kernel);
  }
  if (spec.sigma) shape = shape.blur(spec.sigma);
  return new Uint8Array(await shape.toColourspace('b-w').raw().toBuffer());
}

export async function softEdgeComposite(index: number, width = 480, height = 360): Promise<Composite> {
  const spec = SPECS[index % SPECS.length];
  const [foreground, background, alpha] = await Promise.all([
    renderRgb(width, height, spec.colour(width, height)),
    renderRgb(width, height, `<rect width="100%" height="100%" fill="${spec.background}"/>`),
    renderAlpha(spec, width, height),
  ]);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i] / 255;
    for (let c = 0; c < 3; c++)
      rgb[i * 3 + c] = Math.round(foreground[i * 3 + c] * a + background[i * 3 + c] * (1 - a));
  }
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return { name: spec.name, width, height, rgb, foreground, alpha, png };
}

/** The picture with `alpha` as its fourth channel: what decontamination gets. */
export function withAlpha(rgb: Uint8Array, alpha: Uint8Array): Uint8Array {
  const rgba = new Uint8Array(alpha.length * 4);
  for (let i = 0; i < alpha.length; i++) {
    rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = alpha[i];
  }
  return rgba;
}

/**
 * Mean absolute colour error (0..255, over the three channels) of `rgba`'s colour against the true subject colour,
 * over the pixels whose true alpha is strictly between 0 and 255.
 */
export function softColourError(rgba: Uint8Array, composite: Composite): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < composite.alpha.length; i++) {
    const a = composite.alpha[i];
    if (a === 0 || a === 255) continue;
    for (let c = 0; c < 3; c++) sum += Math.abs(rgba[i * 4 + c] - composite.foreground[i * 3 + c]);
    count += 3;
  }
  return count === 0 ? 0 : sum / count;
}
