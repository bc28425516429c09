// gen-swa-golden.mjs is gen-swa-golden.sh's llama.cpp half. It runs the
// libllama that npm @node-llama-cpp/linux-x64 ships, on the CPU, through the
// koffi FFI:
//
//	node gen-swa-golden.mjs NODE_MODULES DIR OUT
//
// For every model in DIR/variants.json (written by main.go write) it loads
// DIR/<file> with llama.cpp, decodes the prompt in one batch with logits for
// every position, then decodes greedily one token at a time, and writes
// OUT/llamacpp.json.gz: per variant the logits (positions × vocab, float32,
// base64), the greedy ids, the hparams lines llama.cpp printed, which layers
// its iSWA cache put in the sliding-window cache, and the metadata values it
// read. It refuses to write anything when llama.cpp understood a file
// differently from the Config it was written from (arch, window, pattern,
// head size, RoPE style and base).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const [modules, dir, out] = process.argv.slice(2);
if (!modules || !dir || !out) {
  console.error('usage: node gen-swa-golden.mjs NODE_MODULES DIR OUT');
  process.exit(2);
}
const koffi = createRequire(path.join(path.resolve(modules), 'noop.js'))('koffi');

const pkgDir = path.join(modules, '@node-llama-cpp', 'linux-x64');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const bins = path.join(pkgDir, 'bins', 'linux-x64');
const find = (re) => {
  const f = fs.readdirSync(bins).find((n) => re.test(n));
  if (!f) throw new Error(`no ${re} in ${bins}`);
  return path.join(bins, f);
};
const buildMeta = JSON.parse(fs.readFileSync(path.join(bins, '_nlcBuildMetadata.json'), 'utf8'));

// The CPU backend variant. ggml picks the best one for the host by itself,
// which makes the logits depend on the machine that ran this (AVX-512 and
// AMX kernels round differently); a fixed AVX2 build keeps regeneration
// reproducible on any x86-64 of the last decade. SWA_GOLDEN_CPU=best lets
// ggml choose.
const cpuVariant = process.env.SWA_GOLDEN_CPU || 'haswell';
const threads = 2;

const ggmlBase = koffi.load(find(/^libggml-base\.so$/));
const ggml = koffi.load(find(/^libggml\.v.*\.so$|^libggml\.so$/));
const llama = koffi.load(find(/^libllama\.v.*\.so$|^libllama\.so$/));
const common = koffi.load(find(/^libllama-common\.so$/));

// The structs as include/llama.h declares them at the commit this package
// was built from (node-llama-cpp 3.22.1 ships that source as
// llama/gitRelease.bundle). checkDefaults below compares every field of the
// library's own defaults with llama_model_default_params and
// llama_context_default_params in that source, so a layout change fails
// loudly instead of passing garbage.
koffi.struct('llama_model_params', {
  devices: 'void *',
  tensor_buft_overrides: 'void *',
  n_gpu_layers: 'int32',
  split_mode: 'int32',
  load_mode: 'int32',
  lazy_mode: 'int32',
  main_gpu: 'int32',
  tensor_split: 'void *',
  progress_callback: 'void *',
  progress_callback_user_data: 'void *',
  kv_overrides: 'void *',
  vocab_only: 'bool',
  check_tensors: 'bool',
  use_extra_bufts: 'bool',
  no_host: 'bool',
  no_alloc: 'bool',
  load_mtp: 'bool',
});
koffi.struct('llama_context_params', {
  n_ctx: 'uint32',
  n_batch: 'uint32',
  n_ubatch: 'uint32',
  n_seq_max: 'uint32',
  n_rs_seq: 'uint32',
  n_outputs_max: 'uint32',
  n_outputs_max_per_seq: 'uint32',
  n_threads: 'int32',
  n_threads_batch: 'int32',
  ctx_type: 'int32',
  rope_scaling_type: 'int32',
  pooling_type: 'int32',
  attention_type: 'int32',
  flash_attn_type: 'int32',
  rope_freq_base: 'float',
  rope_freq_scale: 'float',
  yarn_ext_factor: 'float',
  yarn_attn_factor: 'float',
  yarn_beta_fast: 'float',
  yarn_beta_slow: 'float',
  yarn_orig_ctx: 'uint32',
  defrag_thold: 'float',
  cb_eval: 'void *',
  cb_eval_user_data: 'void *',
  type_k: 'int32',
  type_v: 'int32',
  abort_callback: 'void *',
  abort_callback_data: 'void *',
  embeddings: 'bool',
  offload_kqv: 'bool',
  no_perf: 'bool',
  op_offload: 'bool',
  swa_full: 'bool',
  kv_unified: 'bool',
  samplers: 'void *',
  n_samplers: 'size_t',
  ctx_other: 'void *',
});
koffi.struct('llama_batch', {
  n_tokens: 'int32',
  token: 'void *', // (n,) int32
  embd: 'void *',
  pos: 'void *', // (n,) int32
  n_seq_id: 'void *', // (n,) int32
  seq_id: 'void *', // (n,) int32 *
  logits: 'void *', // (n,) int8: output this position
});
const logProto = koffi.proto('void ggml_log_callback(int level, const char *text, void *user_data)');

const f = (decl) => llama.func(decl);
const modelDefaults = f('llama_model_params llama_model_default_params()');
const contextDefaults = f('llama_context_params llama_context_default_params()');
const backendInit = f('void llama_backend_init()');
const logSet = f('void llama_log_set(ggml_log_callback *cb, void *user_data)');
const loadModel = f('void *llama_model_load_from_file(const char *path, llama_model_params params)');
const freeModel = f('void llama_model_free(void *model)');
const initContext = f('void *llama_init_from_model(void *model, llama_context_params params)');
const freeContext = f('void llama_free(void *ctx)');
const modelVocab = f('void *llama_model_get_vocab(void *model)');
const vocabSize = f('int32 llama_vocab_n_tokens(void *vocab)');
const modelSWA = f('int32 llama_model_n_swa(void *model)');
const modelDesc = f('int32 llama_model_desc(void *model, void *buf, size_t size)');
const metaVal = f('int32 llama_model_meta_val_str(void *model, const char *key, void *buf, size_t size)');
const nCtx = f('uint32 llama_n_ctx(void *ctx)');
const nBatch = f('uint32 llama_n_batch(void *ctx)');
const nUbatch = f('uint32 llama_n_ubatch(void *ctx)');
const batchInit = f('llama_batch llama_batch_init(int32 n_tokens, int32 embd, int32 n_seq_max)');
const batchFree = f('void llama_batch_free(llama_batch batch)');
const decode = f('int32 llama_decode(void *ctx, llama_batch batch)');
const logitsIth = f('void *llama_get_logits_ith(void *ctx, int32 i)');
const backendLoad = ggml.func('void *ggml_backend_load(const char *path)');
const backendLoadAll = ggml.func('void ggml_backend_load_all_from_path(const char *dir)');
const commit = common.func('const char *_Z12llama_commitv()');
const ggmlVersion = ggmlBase.func('const char *ggml_version()');
const ggmlCommit = ggmlBase.func('const char *ggml_commit()');

const GGML_TYPE_F32 = 0;
const LLAMA_FLASH_ATTN_TYPE_DISABLED = 0;

// checkDefaults compares a struct the library filled with the defaults its
// source sets.
function checkDefaults(name, got, want) {
  for (const [k, v] of Object.entries(want)) {
    const g = got[k];
    const same = typeof v === 'number' && !Number.isInteger(v) ? Math.abs(g - v) < 1e-6 : g === v;
    if (!same) {
      throw new Error(`${name}: field ${k} is ${g}, want ${v}: the struct layout does not match this libllama`);
    }
  }
}

// Every log line of every level, debug included (the KV cache reports its
// layers at debug level). The callback gets pieces, with ggml_log_level 5
// for a continuation; lines are joined here. Warnings (3) and errors (4) go
// to stderr as well (SWA_GOLDEN_VERBOSE=1: everything).
let logLines = [];
let partial = '';
let lineLevel = 0;
const onLog = koffi.register((level, text) => {
  if (level !== 5 || partial === '') lineLevel = level;
  partial += text;
  let nl;
  while ((nl = partial.indexOf('\n')) >= 0) {
    const line = partial.slice(0, nl);
    partial = partial.slice(nl + 1);
    logLines.push(line);
    if ((lineLevel === 3 || lineLevel === 4) || process.env.SWA_GOLDEN_VERBOSE) process.stderr.write(line + '\n');
  }
}, koffi.pointer(logProto));

logSet(onLog, null);
backendInit();
let cpuBackend;
if (cpuVariant === 'best') {
  backendLoadAll(bins);
  cpuBackend = 'best for the host';
} else {
  const lib = path.join(bins, `libggml-cpu-${cpuVariant}.so`);
  if (!fs.existsSync(lib)) throw new Error(`no CPU backend ${lib}`);
  if (!backendLoad(lib)) throw new Error(`ggml_backend_load ${lib} failed`);
  cpuBackend = path.basename(lib);
}
// (the scratch directory stripped from the paths, so reruns give the same file)
const backendLog = logLines.filter((l) => /load_backend|ggml_backend_load/.test(l)).map((l) => l.replaceAll(bins + path.sep, ''));

const mp0 = modelDefaults();
checkDefaults('llama_model_params', mp0, {
  devices: null, tensor_buft_overrides: null, n_gpu_layers: -1, split_mode: 1, load_mode: -1, lazy_mode: 1,
  main_gpu: 0, tensor_split: null, progress_callback: null, progress_callback_user_data: null, kv_overrides: null,
  vocab_only: false, check_tensors: false, use_extra_bufts: true, no_host: false, no_alloc: false, load_mtp: false,
});
const cp0 = contextDefaults();
checkDefaults('llama_context_params', cp0, {
  n_ctx: 512, n_batch: 2048, n_ubatch: 512, n_seq_max: 1, n_rs_seq: 0, n_outputs_max: 0, n_outputs_max_per_seq: 1,
  n_threads: 4, n_threads_batch: 4, ctx_type: 0, rope_scaling_type: -1, pooling_type: -1, attention_type: -1,
  flash_attn_type: -1, rope_freq_base: 0, rope_freq_scale: 0, yarn_ext_factor: -1, yarn_attn_factor: -1,
  yarn_beta_fast: -1, yarn_beta_slow: -1, yarn_orig_ctx: 0, defrag_thold: -1, cb_eval: null, cb_eval_user_data: null,
  type_k: 1, type_v: 1, abort_callback: null, abort_callback_data: null, embeddings: false, offload_kqv: true,
  no_perf: true, op_offload: true, swa_full: true, kv_unified: false, samplers: null, n_samplers: 0, ctx_other: null,
});
if (koffi.sizeof('llama_context_params') !== 160 || koffi.sizeof('llama_model_params') !== 80 || koffi.sizeof('llama_batch') !== 56) {
  throw new Error('unexpected struct sizes');
}

// What we change from the defaults, and why.
const modelParams = {
  n_gpu_layers: 0, // CPU only
  split_mode: 0, // LLAMA_SPLIT_MODE_NONE
  load_mode: 0, // plain reads: no mmap, no direct I/O
  lazy_mode: 0, // read every tensor up front
};
const contextParams = {
  n_ctx: 64, // ≥ prompt + greedy steps
  n_batch: 64,
  n_ubatch: 64, // the whole prompt in one ubatch
  n_seq_max: 1,
  n_threads: threads,
  n_threads_batch: threads,
  flash_attn_type: LLAMA_FLASH_ATTN_TYPE_DISABLED,
  type_k: GGML_TYPE_F32, // no f16 rounding of K and V
  type_v: GGML_TYPE_F32,
  offload_kqv: false,
  op_offload: false,
  swa_full: false, // the real iSWA cache (sized W + n_ubatch, padded), not a full-size one
};

const str = (fn, ...args) => {
  const buf = Buffer.alloc(512);
  const n = fn(...args, buf, buf.length);
  return n < 0 ? null : buf.subarray(0, Math.min(n, buf.length - 1)).toString('utf8');
};

const argmax = (row) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
};
// margin is the gap between the largest logit and the next: how far another
// implementation's rounding may move them before the argmax changes.
const margin = (row) => {
  const best = argmax(row);
  let second = -Infinity;
  for (let i = 0; i < row.length; i++) if (i !== best && row[i] > second) second = row[i];
  return Math.fround(row[best] - second);
};

// The hparams lines a reader needs to see what llama.cpp understood.
const hparamKeys = [
  'arch', 'n_ctx_train', 'n_embd', 'n_layer', 'n_head', 'n_head_kv', 'n_rot', 'n_swa', 'is_swa_any',
  'n_embd_head_k', 'n_embd_head_v', 'n_gqa', 'n_embd_k_gqa', 'n_embd_v_gqa', 'f_norm_eps', 'f_norm_rms_eps',
  'f_logit_scale', 'f_attn_scale', 'n_ff', 'rope type', 'rope scaling', 'freq_base_train', 'freq_scale_train',
  'freq_base_swa', 'freq_scale_swa', 'n_embd_head_k_swa', 'n_embd_head_v_swa', 'n_rot_swa', 'model type',
];
const hparamRe = new RegExp(`^print_info: (${hparamKeys.join('|')})\\s+=`);

// The metadata keys the families read (llama.cpp's own view of them,
// through llama_model_meta_val_str: the softcaps are never printed).
const metaKeys = (arch) => [
  'attention.sliding_window', 'attention.sliding_window_pattern', 'attn_logit_softcapping',
  'final_logit_softcapping', 'logit_scale', 'rope.freq_base', 'rope.freq_base_swa', 'rope.scaling.type',
  'rope.scaling.factor', 'rope.dimension_count', 'attention.key_length', 'attention.value_length',
  'attention.layer_norm_epsilon', 'attention.layer_norm_rms_epsilon',
].map((k) => `${arch}.${k}`);

// The archs llama.cpp gives an iSWA cache (of those main.go models); the
// others (llama, qwen2, qwen3) read no window at all.
const swaArchs = new Set(['gemma2', 'gemma3', 'cohere2']);
// print_info's "rope type" for loader.RopeStyle 0 (pairwise) and 1 (half):
// LLAMA_ROPE_TYPE_NORM 0, LLAMA_ROPE_TYPE_NEOX 2 (GGML_ROPE_TYPE_NEOX).
const ropeType = [0, 2];

// swaLayers reads which layers the iSWA cache put in its SWA half from the
// llama_kv_cache debug lines that follow "creating SWA KV cache".
function swaLayers(lines) {
  const start = lines.findIndex((l) => /creating +SWA KV cache/.test(l));
  if (start < 0) return null;
  const layers = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^llama_kv_cache: layer +(\d+): dev = /.exec(l);
    if (m) layers.push(Number(m[1]));
    if (/^llama_kv_cache: size =/.test(l)) break;
  }
  return layers;
}

function run(v) {
  logLines = [];
  const file = path.join(dir, v.file);
  const mp = { ...modelDefaults(), ...modelParams };
  const model = loadModel(file, mp);
  if (!model) {
    const why = logLines.filter((l) => /error|failed|wrong|missing|not found|invalid/i.test(l));
    throw new Error(`llama.cpp refused ${v.file}:\n  ${why.join('\n  ')}`);
  }
  const cp = { ...contextDefaults(), ...contextParams };
  const ctx = initContext(model, cp);
  if (!ctx) {
    freeModel(model);
    throw new Error(`llama_init_from_model failed for ${v.file}:\n  ${logLines.slice(-10).join('\n  ')}`);
  }
  const nVocab = vocabSize(modelVocab(model));
  if (nVocab !== v.config.VocabSize) throw new Error(`${v.name}: llama.cpp sees ${nVocab} tokens, want ${v.config.VocabSize}`);

  // What llama.cpp understood, checked against the Config.
  const arch = /^print_info: arch\s+=\s+(\S+)/.exec(logLines.find((l) => /^print_info: arch\s+=/.test(l)) ?? '')?.[1];
  const layers = v.config.Layers ?? [];
  const window = Math.max(0, ...layers.map((l) => l.Window));
  const wantSWA = layers.flatMap((l, i) => (l.Window > 0 ? [i] : []));
  const gotSWA = swaLayers(logLines);
  const problems = [];
  if (arch !== v.config.Arch) problems.push(`arch ${arch}, want ${v.config.Arch}`);
  if (layers.some((l) => l.Window > 0 && l.Window !== window)) problems.push('local layers with different windows');
  if (!swaArchs.has(v.config.Arch)) {
    // llama.cpp reads no window for these: one plain cache, full attention.
    if (modelSWA(model) !== 0) problems.push(`n_swa ${modelSWA(model)}, want 0 (${v.config.Arch} has no SWA in llama.cpp)`);
    if (wantSWA.length) problems.push(`Config has local layers ${JSON.stringify(wantSWA)}, but ${v.config.Arch} has no SWA in llama.cpp`);
    if (gotSWA !== null) problems.push(`${v.config.Arch} arch with an iSWA cache`);
  } else {
    if (modelSWA(model) !== window) problems.push(`n_swa ${modelSWA(model)}, want ${window}`);
    if (JSON.stringify(gotSWA) !== JSON.stringify(wantSWA)) {
      problems.push(`SWA cache layers ${JSON.stringify(gotSWA)}, want ${JSON.stringify(wantSWA)}`);
    }
  }
  // Head size, rotated dims, RoPE style and base as print_info reports them.
  // (Biases, q/k norms and rope_freqs.weight print nothing: llama.cpp
  // refuses a file with a tensor it did not create, so a file it loaded had
  // each of them read; main.go checks which ones it creates.)
  const hp = (key) => {
    const line = logLines.find((l) => l.startsWith(`print_info: ${key} `) && /=/.test(l));
    return line === undefined ? undefined : line.slice(line.indexOf('=') + 1).trim();
  };
  const ropeHead = v.config.RopeDim || v.config.HeadDim;
  for (const [key, want] of [
    ['n_embd_head_k', v.config.HeadDim],
    ['n_embd_head_v', v.config.HeadDim],
    ['n_rot', ropeHead],
    ['rope type', ropeType[v.config.Rope]],
  ]) {
    if (Number(hp(key)) !== want) problems.push(`${key} ${hp(key)}, want ${want}`);
  }
  if (Math.fround(Number(hp('freq_base_train'))) !== Math.fround(v.config.RopeTheta)) {
    problems.push(`freq_base_train ${hp('freq_base_train')}, want ${v.config.RopeTheta}`);
  }
  if (problems.length) throw new Error(`${v.name}: llama.cpp understood the file differently: ${problems.join('; ')}`);

  const metadata = {};
  for (const k of metaKeys(v.config.Arch)) {
    const val = str(metaVal, model, k);
    if (val !== null) metadata[k] = val;
  }
  const hparamsLog = logLines.filter((l) => hparamRe.test(l));
  const cacheLog = logLines.filter((l) => /^llama_kv_cache_iswa:|^llama_kv_cache: (layer|size|attn_rot)|^llama_context: (n_ctx|n_batch|n_ubatch|causal|flash_attn|n_ctx_seq|freq_|swa)/.test(l));

  // The prompt in one batch, with logits at every position.
  const n = v.prompt.length;
  const steps = v.greedy_steps;
  if (n + steps - 1 > contextParams.n_ctx) throw new Error(`${v.name}: prompt and greedy steps exceed n_ctx`);
  const batch = batchInit(n, 0, 1);
  const fill = (ids, pos0) => {
    batch.n_tokens = ids.length;
    koffi.encode(batch.token, 'int32', ids, ids.length);
    koffi.encode(batch.pos, 'int32', ids.map((_, i) => pos0 + i), ids.length);
    koffi.encode(batch.n_seq_id, 'int32', ids.map(() => 1), ids.length);
    const seqs = koffi.decode(batch.seq_id, 'void *', ids.length);
    for (const s of seqs) koffi.encode(s, 'int32', 0);
    koffi.encode(batch.logits, 'int8', ids.map(() => 1), ids.length);
  };
  fill(v.prompt, 0);
  let rc = decode(ctx, batch);
  if (rc !== 0) throw new Error(`${v.name}: llama_decode of the prompt returned ${rc}`);
  const logits = new Float32Array(n * nVocab); // (positions, vocab) f32
  for (let i = 0; i < n; i++) {
    const p = logitsIth(ctx, i);
    if (!p) throw new Error(`${v.name}: no logits at position ${i}`);
    logits.set(koffi.decode(p, 'float', nVocab), i * nVocab);
  }
  // Greedy: the first id comes from the prompt's last logits; each later one
  // from decoding the previous id alone at the next position.
  const last = logits.subarray((n - 1) * nVocab);
  const greedy = [argmax(last)];
  const greedyMargin = [margin(last)];
  for (let s = 1; s < steps; s++) {
    fill([greedy[s - 1]], n + s - 1);
    rc = decode(ctx, batch);
    if (rc !== 0) throw new Error(`${v.name}: llama_decode of greedy step ${s} returned ${rc}`);
    const row = koffi.decode(logitsIth(ctx, -1), 'float', nVocab);
    greedy.push(argmax(row));
    greedyMargin.push(margin(row));
  }
  const actual = { n_ctx: nCtx(ctx), n_batch: nBatch(ctx), n_ubatch: nUbatch(ctx) };
  const desc = str(modelDesc, model);
  batchFree(batch);
  freeContext(ctx);
  freeModel(model);
  process.stderr.write(`${v.name}: arch ${arch}, swa layers ${JSON.stringify(gotSWA)}, greedy ${greedy.join(' ')}\n`);
  return {
    name: v.name,
    why: v.why,
    arch: v.config.Arch,
    config: v.config,
    type: v.type,
    seed: v.seed,
    sha256: v.sha256,
    size: v.size,
    prompt: v.prompt,
    logits: Buffer.from(logits.buffer).toString('base64'),
    greedy,
    greedy_margin: greedyMargin,
    hparams_log: hparamsLog,
    cache_log: cacheLog,
    swa_layers: gotSWA ?? [],
    metadata,
    model_desc: desc,
    context: actual,
  };
}

const input = JSON.parse(fs.readFileSync(path.join(dir, 'variants.json'), 'utf8'));
const variants = input.variants.map(run);
const golden = {
  llama_cpp: {
    package: `${pkg.name}@${pkg.version}`,
    commit: commit(),
    release: buildMeta.buildOptions?.llamaCpp?.release ?? null,
    ggml_version: ggmlVersion(),
    ggml_commit: ggmlCommit(),
    cpu_backend: cpuBackend,
    backend_log: backendLog,
  },
  params: {
    model: modelParams,
    context: contextParams,
    decode: 'prompt in one llama_batch (pos 0…n−1, seq 0, logits at every position), then one token per llama_decode',
    greedy: 'argmax of the logits, the lowest id on ties; no stop at EOS',
  },
  prompt_rule: input.prompt_rule,
  variants,
};
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'llamacpp.json.gz'), zlib.gzipSync(JSON.stringify(golden), { level: 9 }));
