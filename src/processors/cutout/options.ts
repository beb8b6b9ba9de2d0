import { Type } from '@sinclair/typebox';
import { MAX_OUTPUT_SIDE } from '../output-size.js';
import { ASPECT_PATTERN, MARGIN_PATTERN, POSITION_PATTERN } from './framing.js';

/**
 * The cut-out options of remove-background that shape its output after the mask is known: framing, shadow and
 * colour decontamination. remove-background's schema spreads these in, so pipelines and templates get them too.
 */
const Side = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_OUTPUT_SIDE, description });
const Percent = (description: string, minimum: number, maximum: number, fallback: number) =>
  Type.Number({ minimum, maximum, default: fallback, description });

export const CutoutOptionProperties = {
  crop: Type.Boolean({
    default: false,
    description: "Frame the subject's box (specks below 1 % of the largest region ignored), plus cropMargin.",
  }),
  cropMargin: Type.Union(
    [Type.Number({ minimum: 0, maximum: 100 }), Type.String({ pattern: MARGIN_PATTERN, maxLength: 64 })],
    {
      default: 0,
      description:
        "With crop: a number is a percent of the subject box's longer side on every side; a string gives 1-4 " +
        'CSS-ordered values in px or % ("30px", "10%", "5% 10%", "10px 20px 30px 40px"). Past the photo\'s edge the ' +
        'margin is transparent (or the background).',
    },
  ),
  scale: Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 100 }), Type.Literal('original')], {
    default: 'original',
    description:
      "The subject's larger side as a percent of the canvas (it fits that share of both sides), or original.",
  }),
  position: Type.Optional(
    Type.String({
      pattern: POSITION_PATTERN,
      maxLength: 32,
      description:
        'Where the subject goes: original, center, or "x% y%" (0% against the left/top edge, 100% the right/bottom); ' +
        'default center when scale is a percent, else original.',
    }),
  ),
  canvas: Type.Optional(
    Type.Object(
      {
        width: Type.Optional(Side('Canvas width in px.')),
        height: Type.Optional(Side('Canvas height in px.')),
        aspect: Type.Optional(
          Type.String({ pattern: ASPECT_PATTERN, description: 'W:H; with one side given, the other follows.' }),
        ),
      },
      {
        additionalProperties: false,
        description:
          'Output size: width and height, one side and an aspect, or an aspect alone (the frame grows to it).',
      },
    ),
  ),
  maxMegapixels: Type.Optional(
    Type.Number({
      minimum: 0.01,
      maximum: 1000,
      description: 'Scale the output down to at most this many megapixels.',
    }),
  ),
  shadow: Type.Optional(
    Type.Object(
      {
        opacity: Percent('Darkness where the silhouette is solid, 0..1.', 0, 1, 0.5),
        blur: Percent("Blur (sigma) in percent of the subject's larger side.", 0, 25, 2),
        offsetX: Percent("Offset right, in percent of the subject's larger side.", -50, 50, 0),
        offsetY: Percent("Offset down, in percent of the subject's larger side.", -50, 50, 2),
      },
      { additionalProperties: false, description: 'A soft drop shadow behind the subject ({} for the defaults).' },
    ),
  ),
  decontaminate: Type.Boolean({
    default: true,
    description:
      "Re-estimate the subject's colour in soft edges (0 < alpha < 1) so no fringe of the old background shows.",
  }),
};
