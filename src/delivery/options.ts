import { PixqError } from '../errors.js';
import { MAX_OUTPUT_SIDE } from '../processors/output-size.js';
import type { UrlOption } from './url.js';

/**
 * The processing options delivery URLs may carry: a documented subset of imgproxy's, with its long and short
 * names and its argument forms, so URLs built for imgproxy mean the same here. Anything else, and any value out
 * of range, is a 400 `invalid_option` naming it. The result is `RenderOptions`, in one canonical form: two URLs
 * asking for the same image get the same cache key however they spell it.
 */

export const DELIVERY_FORMATS = ['png', 'jpeg', 'webp', 'avif'] as const;
export type DeliveryFormat = (typeof DELIVERY_FORMATS)[number];

export const RESIZING_TYPES = ['fit', 'fill', 'fill-down', 'force', 'auto'] as const;
export type ResizingType = (typeof RESIZING_TYPES)[number];

/** Compass points, centre, smart (libvips' attention strategy) and a focus point. */
export const GRAVITY_TYPES = ['no', 'so', 'ea', 'we', 'noea', 'nowe', 'soea', 'sowe', 'ce', 'sm', 'fp'] as const;
export type GravityType = (typeof GRAVITY_TYPES)[number];

export interface Gravity {
  type: GravityType;
  /** Compass gravity: an offset in pixels (|x| >= 1) or a fraction of the size; focus point: 0..1. */
  x: number;
  y: number;
}

export interface RenderOptions {
  resizingType: ResizingType;
  /** 0: follows from the other side (or the source). */
  width: number;
  height: number;
  dpr: number;
  enlarge: boolean;
  extend: boolean;
  extendGravity: Gravity;
  gravity: Gravity;
  background: [number, number, number] | null;
  quality: number | null;
  format: DeliveryFormat | null;
}

/** What a URL asks for: the options that shape the image, and those that do not. */
export interface ParsedOptions {
  render: RenderOptions;
  cachebuster: string | null;
}

/** The documented maxima. Output pixels are bounded by PIXQ_MAX_PIXELS as well, once the size is known. */
export const DELIVERY_LIMITS = { maxSide: MAX_OUTPUT_SIDE, maxDpr: 8, maxCachebuster: 64, maxPresets: 50 } as const;

const CENTRE: Gravity = { type: 'ce', x: 0, y: 0 };

export function defaultRenderOptions(): RenderOptions {
  return {
    resizingType: 'fit',
    width: 0,
    height: 0,
    dpr: 1,
    enlarge: false,
    extend: false,
    extendGravity: CENTRE,
    gravity: CENTRE,
    background: null,
    quality: null,
    format: null,
  };
}

export function invalidOption(message: string): PixqError {
  return new PixqError('invalid_option', message, { status: 400 });
}

/** Vendor settings that shape how a URL's options are read. */
export interface OptionRules {
  /** Named option lists in URL form, by name; `default` applies to every URL first, as in imgproxy. */
  presets: Record<string, string>;
  /** Only `preset`, `cachebuster` and `format` may appear in a URL. */
  presetsOnly: boolean;
}

const PRESETS_ONLY_ALLOWED = new Set(['preset', 'cachebuster', 'format']);

/** Reads a URL's options (and its source extension, which sets the format) under a vendor's rules. */
export function parseOptions(options: UrlOption[], extension: string | undefined, rules: OptionRules): ParsedOptions {
  const parsed: ParsedOptions = { render: defaultRenderOptions(), cachebuster: null };
  if (rules.presets.default !== undefined) applyPreset(parsed, 'default', rules.presets, []);
  for (const option of options) {
    const name = canonicalName(option.name);
    if (rules.presetsOnly && !PRESETS_ONLY_ALLOWED.has(name)) {
      throw invalidOption(`option "${option.name}" is not allowed: this vendor's URLs may name presets only`);
    }
    apply(parsed, name, option.args, rules.presets, []);
  }
  if (extension !== undefined) parsed.render.format = format(extension);
  return parsed;
}

/** Checks a preset's options when a vendor saves it: the same parser, without presets inside presets. */
export function checkPreset(name: string, text: string): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw invalidOption(`preset name "${name}" must be 1-64 letters, digits, _ or -`);
  const options = splitOptions(text);
  for (const option of options) {
    const canonical = canonicalName(option.name);
    if (canonical === 'preset') throw invalidOption(`preset "${name}" may not name other presets`);
    apply({ render: defaultRenderOptions(), cachebuster: null }, canonical, option.args, {}, []);
  }
}

/** `rs:fill:300:300/f:webp` into its options. */
export function splitOptions(text: string): UrlOption[] {
  if (text.length > 1024) throw invalidOption('a preset is at most 1024 characters');
  return text
    .split('/')
    .filter((part) => part !== '')
    .map((part) => {
      const [name, ...args] = part.split(':');
      if (args.length === 0) throw invalidOption(`"${part}" is not an option (name:argument)`);
      return { name, args };
    });
}

const NAMES: Record<string, string> = {
  resize: 'resize',
  rs: 'resize',
  size: 'size',
  s: 'size',
  resizing_type: 'resizing_type',
  rt: 'resizing_type',
  width: 'width',
  w: 'width',
  height: 'height',
  h: 'height',
  dpr: 'dpr',
  enlarge: 'enlarge',
  el: 'enlarge',
  extend: 'extend',
  ex: 'extend',
  gravity: 'gravity',
  g: 'gravity',
  background: 'background',
  bg: 'background',
  quality: 'quality',
  q: 'quality',
  format: 'format',
  f: 'format',
  ext: 'format',
  cachebuster: 'cachebuster',
  cb: 'cachebuster',
  preset: 'preset',
  pr: 'preset',
};

function canonicalName(name: string): string {
  const canonical = NAMES[name];
  if (!canonical) {
    throw invalidOption(
      `unknown option "${name.slice(0, 40)}"; supported: ${[...new Set(Object.values(NAMES))].join(', ')}`,
    );
  }
  return canonical;
}

function apply(parsed: ParsedOptions, name: string, args: string[], presets: Record<string, string>, used: string[]) {
  const r = parsed.render;
  switch (name) {
    case 'resize':
      return applyResize(r, args);
    case 'size':
      return applySize(r, args);
    case 'resizing_type':
      r.resizingType = resizingType(one(name, args));
      return;
    case 'width':
      r.width = side(name, one(name, args));
      return;
    case 'height':
      r.height = side(name, one(name, args));
      return;
    case 'dpr':
      r.dpr = dpr(one(name, args));
      return;
    case 'enlarge':
      r.enlarge = bool(name, one(name, args));
      return;
    case 'extend':
      return applyExtend(r, args);
    case 'gravity':
      r.gravity = gravity(name, args, true);
      return;
    case 'background':
      r.background = background(args);
      return;
    case 'quality':
      r.quality = quality(one(name, args));
      return;
    case 'format':
      r.format = format(one(name, args));
      return;
    case 'cachebuster':
      parsed.cachebuster = cachebuster(one(name, args));
      return;
    case 'preset':
      for (const preset of args) applyPreset(parsed, preset, presets, used);
      return;
  }
}

function applyPreset(parsed: ParsedOptions, name: string, presets: Record<string, string>, used: string[]) {
  const text = Object.hasOwn(presets, name) ? presets[name] : undefined;
  if (text === undefined) throw invalidOption(`unknown preset "${name.slice(0, 64)}"`);
  if (used.includes(name)) return;
  for (const option of splitOptions(text))
    apply(parsed, canonicalName(option.name), option.args, presets, [...used, name]);
}

function one(name: string, args: string[]): string {
  if (args.length !== 1) throw invalidOption(`${name} takes one argument, got ${args.length}`);
  return args[0];
}

function maxArgs(name: string, args: string[], max: number) {
  if (args.length > max) throw invalidOption(`${name} takes at most ${max} arguments, got ${args.length}`);
}

// `rs:%type:%width:%height:%enlarge:%extend...`; an empty argument leaves that setting as it was.
function applyResize(r: RenderOptions, args: string[]) {
  maxArgs('resize', args, 8);
  if (args[0]) r.resizingType = resizingType(args[0]);
  applySize(r, args.slice(1));
}

// `s:%width:%height:%enlarge:%extend...`
function applySize(r: RenderOptions, args: string[]) {
  maxArgs('size', args, 7);
  if (args[0]) r.width = side('width', args[0]);
  if (args[1]) r.height = side('height', args[1]);
  if (args[2]) r.enlarge = bool('enlarge', args[2]);
  if (args[3]) applyExtend(r, args.slice(3));
}

// `ex:%extend:%gravity...`
function applyExtend(r: RenderOptions, args: string[]) {
  maxArgs('extend', args, 4);
  r.extend = bool('extend', args[0] ?? '');
  if (args.length > 1) r.extendGravity = gravity('extend gravity', args.slice(1), false);
}

function resizingType(text: string): ResizingType {
  if (!(RESIZING_TYPES as readonly string[]).includes(text)) {
    throw invalidOption(`resizing type "${text.slice(0, 20)}" is not one of ${RESIZING_TYPES.join(', ')}`);
  }
  return text as ResizingType;
}

function integer(name: string, text: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(text)) throw invalidOption(`${name} must be a whole number, got "${text.slice(0, 20)}"`);
  const value = Number(text);
  if (value < min || value > max) throw invalidOption(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function side(name: string, text: string): number {
  return integer(name, text, 0, DELIVERY_LIMITS.maxSide);
}

function decimal(name: string, text: string): number {
  if (!/^-?(\d{1,9}(\.\d{0,9})?|\.\d{1,9})$/.test(text))
    throw invalidOption(`${name} must be a number, got "${text.slice(0, 20)}"`);
  return Number(text);
}

function dpr(text: string): number {
  const value = decimal('dpr', text);
  if (!(value > 0 && value <= DELIVERY_LIMITS.maxDpr)) {
    throw invalidOption(`dpr must be greater than 0 and at most ${DELIVERY_LIMITS.maxDpr}, got ${text}`);
  }
  return value;
}

// Go's strconv.ParseBool, which imgproxy uses; anything else is refused rather than read as false.
const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

function bool(name: string, text: string): boolean {
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  throw invalidOption(`${name} must be a boolean (1, t, true, 0, f, false), got "${text.slice(0, 20)}"`);
}

function gravity(name: string, args: string[], smartAllowed: boolean): Gravity {
  const type = args[0] as GravityType;
  if (!(GRAVITY_TYPES as readonly string[]).includes(type) || (type === 'sm' && !smartAllowed)) {
    throw invalidOption(
      `${name} "${String(args[0]).slice(0, 20)}" is not one of ${GRAVITY_TYPES.filter((g) => smartAllowed || g !== 'sm').join(', ')}`,
    );
  }
  if (type === 'sm') {
    if (args.length > 1) throw invalidOption(`${name} sm takes no offsets`);
    return { type, x: 0, y: 0 };
  }
  if (type === 'fp') {
    if (args.length !== 3) throw invalidOption(`${name} fp takes x and y between 0 and 1 (fp:0.5:0.3)`);
    const [x, y] = [decimal(`${name} x`, args[1]), decimal(`${name} y`, args[2])];
    if (x < 0 || x > 1 || y < 0 || y > 1) throw invalidOption(`${name} fp: x and y must be between 0 and 1`);
    return { type, x, y };
  }
  maxArgs(name, args, 3);
  const offset = (text: string | undefined, axis: string) => {
    if (text === undefined || text === '') return 0;
    const value = decimal(`${name} ${axis} offset`, text);
    if (Math.abs(value) > DELIVERY_LIMITS.maxSide)
      throw invalidOption(`${name} ${axis} offset must be within ±${DELIVERY_LIMITS.maxSide}`);
    return value;
  };
  return { type, x: offset(args[1], 'x'), y: offset(args[2], 'y') };
}

function background(args: string[]): [number, number, number] | null {
  if (args.length === 1) {
    if (args[0] === '') return null;
    if (!/^[0-9a-fA-F]{6}$/.test(args[0]))
      throw invalidOption(`background must be RRGGBB hex or r:g:b, got "${args[0].slice(0, 20)}"`);
    const hex = args[0];
    return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  }
  if (args.length === 3) return args.map((a) => integer('background channel', a, 0, 255)) as [number, number, number];
  throw invalidOption('background takes RRGGBB or r:g:b');
}

function quality(text: string): number {
  return integer('quality', text, 1, 100);
}

const FORMAT_NAMES: Record<string, DeliveryFormat> = {
  png: 'png',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  webp: 'webp',
  avif: 'avif',
};

function format(text: string): DeliveryFormat {
  const value = FORMAT_NAMES[text.toLowerCase()];
  if (!value) throw invalidOption(`format "${text.slice(0, 20)}" is not one of png, jpg, webp, avif`);
  return value;
}

function cachebuster(text: string): string {
  if (!/^[A-Za-z0-9._-]*$/.test(text) || text.length > DELIVERY_LIMITS.maxCachebuster) {
    throw invalidOption(
      `cachebuster must be at most ${DELIVERY_LIMITS.maxCachebuster} letters, digits, dots, dashes or underscores`,
    );
  }
  return text;
}

/**
 * The options as one string, equal for every spelling of the same image: settings that cannot change the
 * output (a resizing type without a size, an enlarge flag nothing enlarges by) take their defaults first.
 */
export function canonicalOptions(r: RenderOptions): string {
  const sized = r.width > 0 || r.height > 0;
  const c: RenderOptions = {
    ...r,
    resizingType: sized ? r.resizingType : 'fit',
    extend: sized && r.extend,
    extendGravity: sized && r.extend ? r.extendGravity : CENTRE,
    gravity: sized ? r.gravity : CENTRE,
    format: null,
  };
  return JSON.stringify([
    c.resizingType,
    c.width,
    c.height,
    c.dpr,
    c.enlarge,
    c.extend,
    [c.extendGravity.type, c.extendGravity.x, c.extendGravity.y],
    [c.gravity.type, c.gravity.x, c.gravity.y],
    c.background,
    c.quality,
  ]);
}

/** True when the options leave the image as it is (no size, no background, no quality): the original serves. */
export function isIdentity(r: RenderOptions): boolean {
  return r.width === 0 && r.height === 0 && r.dpr === 1 && r.background === null && r.quality === null;
}
