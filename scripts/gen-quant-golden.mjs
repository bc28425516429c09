// gen-quant-golden.mjs is gen-quant-golden.sh's llama.cpp half. It calls the
// libllama and libggml-base that npm @node-llama-cpp/linux-x64 ships, through
// the koffi FFI, in two steps:
//
//	node gen-quant-golden.mjs quantize NODE_MODULES DIR
//	    quantises every DIR/<variant>.f32.gguf named in DIR/variants.json to
//	    each llama.cpp file type below with llama_model_quantize, writing
//	    DIR/<variant>.<ftype>.gguf, and DIR/run.json (the llama.cpp version
//	    and the file types);
//	node gen-quant-golden.mjs dequantize NODE_MODULES DIR OUT
//	    reads DIR/blocks.raw.json (written by main.go collect) and adds, per
//	    block type, ggml's own dequantisation of llama.cpp's bytes (its
//	    dequantize_row_* functions), whether the bytes equal what ggml's
//	    reference quantiser (quantize_row_*_ref) makes from the f32 source,
//	    and the NMSE (per row, averaged over the rows that are not all
//	    zero); writes OUT/blocks.json.gz.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const [mode, modules, dir, out] = process.argv.slice(2);
if (!['quantize', 'dequantize'].includes(mode) || !modules || !dir || (mode === 'dequantize' && !out)) {
  console.error('usage: node gen-quant-golden.mjs quantize NODE_MODULES DIR | dequantize NODE_MODULES DIR OUT');
  process.exit(2);
}
// koffi lives in the scratch NODE_MODULES, not next to this script.
const koffi = createRequire(path.join(path.resolve(modules), 'noop.js'))('koffi');

// enum llama_ftype (include/llama.h).
const FTYPES = [
  ['Q4_0', 2], ['Q4_1', 3], ['Q5_0', 8], ['Q5_1', 9], ['Q8_0', 7],
  ['Q2_K', 10], ['Q3_K_S', 11], ['Q3_K_M', 12], ['Q3_K_L', 13],
  ['Q4_K_S', 14], ['Q4_K_M', 15], ['Q5_K_S', 16], ['Q5_K_M', 17], ['Q6_K', 18],
  ['IQ4_NL', 25], ['IQ4_XS', 30], ['BF16', 32], ['F16', 1],
];

const pkgDir = path.join(modules, '@node-llama-cpp', 'linux-x64');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const bins = path.join(pkgDir, 'bins', 'linux-x64');
const find = (re) => {
  const f = fs.readdirSync(bins).find((n) => re.test(n));
  if (!f) throw new Error(`no ${re} in ${bins}`);
  return path.join(bins, f);
};
const buildMeta = JSON.parse(fs.readFileSync(path.join(bins, '_nlcBuildMetadata.json'), 'utf8'));

const ggml = koffi.load(find(/^libggml-base\.so$/));
const llama = koffi.load(find(/^libllama\.v.*\.so$|^libllama\.so$/));
const common = koffi.load(find(/^libllama-common\.so$/));

// struct llama_model_quantize_params as include/llama.h declares it. The
// library fills it (llama_model_quantize_default_params); the check of its
// defaults below catches a layout change.
koffi.struct('llama_model_quantize_params', {
  nthread: 'int32',
  ftype: 'int32',
  output_tensor_type: 'int32',
  token_embedding_type: 'int32',
  allow_requantize: 'bool',
  quantize_output_tensor: 'bool',
  only_copy: 'bool',
  pure: 'bool',
  keep_split: 'bool',
  dry_run: 'bool',
  imatrix: 'void *',
  kv_overrides: 'void *',
  tt_overrides: 'void *',
  prune_layers: 'void *',
});
const defaultParams = llama.func('llama_model_quantize_params llama_model_quantize_default_params()');
const quantize = llama.func('uint32 llama_model_quantize(const char *inp, const char *out, const llama_model_quantize_params *params)');
const backendInit = llama.func('void llama_backend_init()');
// const char *llama_commit() of libllama-common (a C++ symbol).
const commit = common.func('const char *_Z12llama_commitv()');
const ggmlVersion = ggml.func('const char *ggml_version()');
const ggmlCommit = ggml.func('const char *ggml_commit()');

if (mode === 'quantize') {
  backendInit();
  const variants = JSON.parse(fs.readFileSync(path.join(dir, 'variants.json'), 'utf8'));
  for (const v of variants) {
    const inp = path.join(dir, `${v.name}.f32.gguf`);
    for (const [name, value] of FTYPES) {
      const p = defaultParams();
      if (p.ftype !== 7 || !p.quantize_output_tensor || p.imatrix !== null) {
        throw new Error(`unexpected llama_model_quantize_default_params layout: ${JSON.stringify(p)}`);
      }
      p.ftype = value;
      p.nthread = 2;
      const dst = path.join(dir, `${v.name}.${name}.gguf`);
      if (quantize(inp, dst, p) !== 0) throw new Error(`llama_model_quantize ${v.name} ${name} failed`);
      process.stdout.write(`${v.name} ${name}\n`);
    }
  }
  const run = {
    llama_cpp: {
      package: `${pkg.name}@${pkg.version}`,
      llama_cpp_commit: commit(),
      llama_cpp_release: buildMeta.buildOptions?.llamaCpp?.release ?? null,
      ggml_version: ggmlVersion(),
      ggml_commit: ggmlCommit(),
    },
    ftypes: FTYPES.map(([name, value]) => ({ name, value })),
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(run, null, 2) + '\n');
} else {
  // ggml's row functions, all (src, dst, n elements).
  const fn = (name) => ggml.func(`void ${name}(const void *src, void *dst, int64_t n)`);
  const lower = (t) => t.toLowerCase().replace(/_k$/, '_K'); // ggml's names: q4_0, q4_K, iq4_nl
  const deq = (t) => fn(t === 'F16' ? 'ggml_fp16_to_fp32_row' : t === 'BF16' ? 'ggml_bf16_to_fp32_row' : `dequantize_row_${lower(t)}`);
  const ref = (t) => fn(t === 'F16' ? 'ggml_fp32_to_fp16_row' : t === 'BF16' ? 'ggml_fp32_to_bf16_row_ref' : `quantize_row_${lower(t)}_ref`);
  const g = JSON.parse(fs.readFileSync(path.join(dir, 'blocks.raw.json'), 'utf8'));
  const n = g.rows * g.cols;
  const src = Buffer.from(g.f32, 'base64');
  if (src.length !== 4 * n) throw new Error('f32 source has the wrong size');
  const x = new Float32Array(src.buffer, src.byteOffset, n);
  for (const b of g.blocks) {
    const data = Buffer.from(b.data, 'base64');
    const y = Buffer.alloc(4 * n);
    deq(b.type)(data, y, n);
    const q = Buffer.alloc(data.length);
    ref(b.type)(x, q, n);
    const yf = new Float32Array(y.buffer, y.byteOffset, n);
    // NMSE per row, averaged over the rows that are not all zero.
    let sum = 0, rows = 0;
    for (let r = 0; r < g.rows; r++) {
      let num = 0, den = 0;
      for (let i = r * g.cols; i < (r + 1) * g.cols; i++) {
        num += (yf[i] - x[i]) ** 2;
        den += x[i] ** 2;
      }
      if (den > 0) {
        sum += num / den;
        rows++;
      }
    }
    b.ggml_f32 = y.toString('base64');
    b.ggml_nmse = sum / rows;
    b.ref_identical = q.equals(data);
    process.stdout.write(`${b.type.padEnd(7)} from ${b.ftype.padEnd(7)} nmse ${b.ggml_nmse.toExponential(3)} ref-identical ${b.ref_identical}\n`);
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'blocks.json.gz'), zlib.gzipSync(JSON.stringify(g), { level: 9 }));
}
