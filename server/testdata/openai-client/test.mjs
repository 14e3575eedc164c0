// Drives a running glmserve with the official openai npm package.
// Environment: GLM_BASE_URL (e.g. http://127.0.0.1:34567), GLM_API_KEY.
// Prints one JSON summary line on stdout; exits 1 on the first failed check.
import OpenAI from 'openai';

const base = process.env.GLM_BASE_URL;
const apiKey = process.env.GLM_API_KEY;
if (!base || !apiKey) {
  console.error('GLM_BASE_URL and GLM_API_KEY must be set');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 120_000 });
const summary = {};

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    console.log(JSON.stringify(summary));
    process.exit(1);
  }
}

// Models.
const models = [];
for await (const m of client.models.list()) models.push(m.id);
check(models.includes('glm-4.7-flash'), `models.list has glm-4.7-flash: ${models}`);
summary.models = models;

// Chat, not streamed (greedy, so that the stream below must match it).
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about the Valkyria Chronicles.' },
];
const req = { model: 'glm-4.7-flash', messages, max_tokens: 24, temperature: 0 };
const r = await client.chat.completions.create(req);
check(r.object === 'chat.completion', `object ${r.object}`);
check(r.id.startsWith('chatcmpl-'), `id ${r.id}`);
check(r.model === 'glm-4.7-flash', `model ${r.model}`);
check(r.choices.length === 1, 'one choice');
const msg = r.choices[0].message;
check(msg.role === 'assistant', 'role assistant');
check(typeof msg.content === 'string', 'content is a string');
check(['stop', 'length'].includes(r.choices[0].finish_reason), `finish_reason ${r.choices[0].finish_reason}`);
check(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24, `completion_tokens ${r.usage.completion_tokens}`);
check(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage adds up');
const full = (msg.reasoning_content ?? '') + '|' + msg.content;
summary.chat = { finish: r.choices[0].finish_reason, usage: r.usage, text: full };

// Chat, streamed, with usage.
const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
let reasoning = '', content = '', finish = null, usage = null, chunks = 0, role = null, ids = new Set();
for await (const chunk of stream) {
  chunks++;
  ids.add(chunk.id);
  check(chunk.object === 'chat.completion.chunk', `chunk object ${chunk.object}`);
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = role ?? c.delta.role;
    if (c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
    if (c.delta.content) content += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(role === 'assistant', 'stream carries the role');
check(ids.size === 1, 'one id for every chunk');
check(finish === r.choices[0].finish_reason, `stream finish ${finish}`);
check(usage && usage.completion_tokens === r.usage.completion_tokens, `stream usage ${JSON.stringify(usage)}`);
check(reasoning + '|' + content === full, `stream text ${JSON.stringify(reasoning + '|' + content)} != ${JSON.stringify(full)}`);
summary.stream = { chunks, finish, usage };

// Logprobs: greedy, so the chosen token is always the most likely one.
const lp = await client.chat.completions.create({ ...req, max_tokens: 6, logprobs: true, top_logprobs: 2 });
const entries = lp.choices[0].logprobs?.content ?? [];
check(entries.length > 0 && entries.length <= 6, `logprobs entries ${entries.length}`);
for (const e of entries) {
  check(e.logprob <= 0 && e.top_logprobs.length === 2, `logprob entry ${JSON.stringify(e)}`);
  check(e.top_logprobs[0].logprob === e.logprob, `greedy token is the top one: ${JSON.stringify(e)}`);
}
summary.logprobs = entries.length;

// Legacy completions, streamed and not.
const c1 = await client.completions.create({ model: 'glm-4.7-flash', prompt: 'The game', max_tokens: 8, temperature: 0 });
check(c1.object === 'text_completion', `completion object ${c1.object}`);
check(c1.choices[0].finish_reason === 'length' || c1.choices[0].finish_reason === 'stop', 'completion finish');
let ctext = '';
for await (const ch of await client.completions.create({ model: 'glm-4.7-flash', prompt: 'The game', max_tokens: 8, temperature: 0, stream: true })) {
  ctext += ch.choices[0]?.text ?? '';
}
check(ctext === c1.choices[0].text, `completion stream ${JSON.stringify(ctext)} != ${JSON.stringify(c1.choices[0].text)}`);
summary.completion = c1.choices[0].text;

// Errors come back as the SDK's typed errors.
try {
  await client.chat.completions.create({ ...req, model: 'gpt-4' });
  check(false, 'unknown model must fail');
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.status === 404, `unknown model: ${e}`);
  check(/model not found/.test(e.message), `404 message: ${e.message}`);
}
try {
  await client.chat.completions.create({ ...req, messages: [] });
  check(false, 'empty messages must fail');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400, `empty messages: ${e}`);
}
try {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
  await bad.chat.completions.create(req);
  check(false, 'a wrong key must fail');
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, `wrong key: ${e}`);
}
summary.ok = true;
console.log(JSON.stringify(summary));
