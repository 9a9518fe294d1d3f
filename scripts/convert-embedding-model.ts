/**
 * Converts nsfwjs's bundled MobileNetV2Mid (a TF.js graph model) once into the Twin
 * pipeline's default image encoder, cut at the 1792-d pooled feature vector. Setup runs it;
 * models/ is generated, never committed. Does nothing when both outputs are newer than
 * nsfwjs's package.json (pass --force to convert anyway).
 *
 *   tsx scripts/convert-embedding-model.ts [OUT_DIR] [--force]     (OUT_DIR defaults to models/)
 *
 * Writes OUT_DIR/mobilenet_v2_mid.onnx and OUT_DIR/mobilenet_v2_mid.preprocess.json:
 *   inputName   ONNX input: float32 NHWC [N, size, size, 3]
 *   outputName  ONNX output: float32 [N, dims], not L2-normalized
 *   size        side in pixels the image is resized to (RGB, no alpha)
 *   layout      'NHWC'
 *   scale       '0..1': pixel bytes divided by 255; the graph itself maps them to [-1, 1]
 *   mean, std   per-channel (x - mean) / std applied after scaling; identity here
 *   dims        embedding length
 *   source      where the weights come from, with the exact nsfwjs version
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  convertTfjsGraphToOnnx,
  loadNsfwjsMobileNetV2Mid,
  MOBILENET_V2_MID_FEATURE_NODE,
  nsfwjsPackage,
} from '../activities/embed/tfjs-to-onnx.js';

const args = process.argv.slice(2);
const force = args.includes('--force');
const outDir = path.resolve(args.find((a) => !a.startsWith('--')) ?? 'models');
const onnxPath = path.join(outDir, 'mobilenet_v2_mid.onnx');
const metaPath = path.join(outDir, 'mobilenet_v2_mid.preprocess.json');

const pkg = nsfwjsPackage();
const pkgTime = fs.statSync(path.join(pkg.root, 'package.json')).mtimeMs;
const fresh = (file: string): boolean => fs.existsSync(file) && fs.statSync(file).mtimeMs > pkgTime;

if (!force && fresh(onnxPath) && fresh(metaPath)) {
  console.log(`convert-embedding-model: ${path.relative(process.cwd(), onnxPath)} is up to date`);
} else {
  const started = Date.now();
  const { modelJson, weights } = loadNsfwjsMobileNetV2Mid();
  const inputName = modelJson.modelTopology.node.find((n) => n.op === 'Placeholder')?.name ?? 'input';
  const outputName = 'embedding';
  const bytes = convertTfjsGraphToOnnx({ modelJson, weights, outputNode: MOBILENET_V2_MID_FEATURE_NODE, outputName });
  const meta = {
    inputName,
    outputName,
    size: 224,
    layout: 'NHWC',
    scale: '0..1',
    mean: [0, 0, 0],
    std: [1, 1, 1],
    dims: 1792,
    source: `nsfwjs@${pkg.version} mobilenet_v2_mid, cut at feature_vector/SpatialSqueeze`,
  };
  fs.mkdirSync(outDir, { recursive: true });
  // Write under temporary names and rename, so an interrupted run never leaves a file that looks fresh.
  fs.writeFileSync(`${onnxPath}.tmp`, bytes);
  fs.writeFileSync(`${metaPath}.tmp`, `${JSON.stringify(meta, null, 2)}\n`);
  fs.renameSync(`${onnxPath}.tmp`, onnxPath);
  fs.renameSync(`${metaPath}.tmp`, metaPath);
  const mb = (bytes.byteLength / 1e6).toFixed(1);
  console.log(`convert-embedding-model: wrote ${path.relative(process.cwd(), onnxPath)} (${mb} MB) in ${Date.now() - started} ms`);
}
