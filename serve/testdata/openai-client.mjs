// The official OpenAI client (npm openai) against vkrun serve, driven by
// TestOpenAIClient: it lists the models, asks for a completion, a streamed
// completion, a chat completion and a streamed chat, and checks two errors
// the client must surface. It prints one JSON object of what it got.
//
// VKRUN_NPM_DIR is where scripts/setup.sh installed the package,
// OPENAI_BASE_URL the server's /v1 URL, OPENAI_API_KEY its key.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(join(process.env.VKRUN_NPM_DIR, 'resolve-from-here.js'));
const mod = await import(pathToFileURL(require.resolve('openai')).href);
const OpenAI = mod.OpenAI ?? mod.default;

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, maxRetries: 0 });
const prompt = 'Once upon a time';
const out = {};

const models = [];
for await (const m of client.models.list()) {
  models.push(m.id);
}
out.models = models;

const c = await client.completions.create({ model: models[0], prompt, max_tokens: 20, temperature: 0 });
out.completion = { text: c.choices[0].text, finish_reason: c.choices[0].finish_reason, usage: c.usage };

let text = '';
let finish = null;
let chunks = 0;
const stream = await client.completions.create({ model: models[0], prompt, max_tokens: 20, temperature: 0, stream: true });
for await (const chunk of stream) {
  chunks++;
  for (const choice of chunk.choices) {
    text += choice.text ?? '';
    finish = choice.finish_reason ?? finish;
  }
}
out.stream = { text, finish_reason: finish, chunks };

const messages = [{ role: 'user', content: prompt }];
const chat = await client.chat.completions.create({ model: models[0], messages, max_tokens: 20, temperature: 0 });
out.chat = { text: chat.choices[0].message.content, role: chat.choices[0].message.role, finish_reason: chat.choices[0].finish_reason };

text = '';
finish = null;
let role = null;
let usage = null;
const chatStream = await client.chat.completions.create({
  model: models[0], messages, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of chatStream) {
  usage = chunk.usage ?? usage;
  for (const choice of chunk.choices) {
    role = choice.delta.role ?? role;
    text += choice.delta.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
}
out.chat_stream = { text, role, finish_reason: finish, usage };

// Errors come back as the client's typed errors, with the server's status and code.
async function status(fn) {
  try {
    await fn();
    return { status: 0 };
  } catch (e) {
    return { status: e.status ?? -1, code: e.code ?? null, name: e.constructor.name };
  }
}
out.errors = {
  n2: await status(() => client.completions.create({ model: models[0], prompt, n: 2 })),
  bad_key: await status(() => new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: 'wrong', maxRetries: 0 }).models.list()),
};

console.log(JSON.stringify(out));
