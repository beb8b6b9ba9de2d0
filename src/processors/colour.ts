import { validationFailed } from '../errors.js';

/** A colour in sharp's shape: channels 0..255, alpha 0..1. */
export interface Colour {
  r: number;
  g: number;
  b: number;
  alpha: number;
}

// A short list on purpose: callers of an image API mostly send hex; the names cover the common backgrounds.
const NAMED: Record<string, string> = {
  white: '#ffffff',
  black: '#000000',
  transparent: '#00000000',
  red: '#ff0000',
  green: '#008000',
  blue: '#0000ff',
  gray: '#808080',
  grey: '#808080',
  silver: '#c0c0c0',
  yellow: '#ffff00',
};

const HEX = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
const FUNCTIONAL = /^rgba?\(\s*([^)]*)\)$/i;

/**
 * Parses `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, `rgb(r, g, b)`, `rgba(r, g, b, a)` (a in 0..1) or a few names.
 * Throws `validation_failed` so a bad colour is refused when the job is submitted, not when it runs.
 */
export function parseColour(value: string, field = 'colour'): Colour {
  const text = value.trim().toLowerCase();
  const colour = parseHex(NAMED[text] ?? text) ?? parseFunctional(text);
  if (!colour) {
    throw validationFailed(
      `${field}: "${value}" is not a colour; use #rrggbb, #rrggbbaa, rgb(r, g, b), rgba(r, g, b, a) or a name such as white`,
      { errors: [{ path: field, message: 'not a colour' }] },
    );
  }
  return colour;
}

function parseHex(text: string): Colour | undefined {
  const match = HEX.exec(text);
  if (!match) return undefined;
  let digits = match[1];
  if (digits.length <= 4) digits = [...digits].map((d) => d + d).join('');
  const byte = (i: number) => parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  return { r: byte(0), g: byte(1), b: byte(2), alpha: digits.length === 8 ? round3(byte(3) / 255) : 1 };
}

function parseFunctional(text: string): Colour | undefined {
  const match = FUNCTIONAL.exec(text);
  if (!match) return undefined;
  const parts = match[1].split(',').map((p) => p.trim());
  if (parts.length !== 3 && parts.length !== 4) return undefined;
  if (parts.slice(0, 3).some((p) => !/^\d{1,3}$/.test(p))) return undefined;
  const channels = parts.slice(0, 3).map(Number);
  if (channels.some((c) => c > 255)) return undefined;
  const alpha = parts.length === 4 ? Number(parts[3]) : 1;
  if (parts.length === 4 && (parts[3] === '' || !Number.isFinite(alpha) || alpha < 0 || alpha > 1)) return undefined;
  return { r: channels[0], g: channels[1], b: channels[2], alpha };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
