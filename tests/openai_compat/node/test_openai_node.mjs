// The official OpenAI Node package (`openai`, tests/openai_compat/node/package.json) against a
// running `cairn serve`, with node:test. Run by crates/cairn-cli/tests/it/clients.rs, which starts
// a scripted upstream and Cairn with the models `backup` (answers `answer from good`; streamed
// `Hi there`), `agent` (answers with a `get_weather` call), `small` (refuses: context length
// exceeded) and the embedding model all-MiniLM-L6-v2, and copies this file next to the installed
// package (scripts/npm-tools.sh node-clients) so that `import "openai"` finds it.
// Environment: CAIRN_BASE_URL (http://127.0.0.1:PORT/v1).

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.CAIRN_BASE_URL, apiKey: "not-needed", maxRetries: 0 });
const messages = [{ role: "user", content: "Hello?" }];

test("lists models, with apps and agents marked", async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids.sort(), ["agent", "all-MiniLM-L6-v2", "backup", "small"]);
  const one = await client.models.retrieve("backup");
  assert.equal(one.id, "backup");
});

test("chat completion with usage", async () => {
  const completion = await client.chat.completions.create({ model: "backup", messages });
  assert.equal(completion.choices[0].message.content, "answer from good");
  assert.ok(completion.usage.prompt_tokens > 0);
});

test("streamed chat with usage in the last chunk", async () => {
  const stream = await client.chat.completions.create({
    model: "backup", messages, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "Hi there");
  assert.ok(usage && usage.completion_tokens > 0);
});

test("tool calls", async () => {
  const completion = await client.chat.completions.create({
    model: "agent",
    messages: [{ role: "user", content: "Weather in Oslo?" }],
    tools: [{ type: "function", function: { name: "get_weather", description: "The weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
  });
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Oslo" });
});

test("embeddings, base64 by default", async () => {
  const response = await client.embeddings.create({ model: "all-MiniLM-L6-v2", input: ["A man is eating food."] });
  assert.equal(response.data[0].embedding.length, 384);
});

test("typed errors", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "small", messages }),
    (error) => error instanceof OpenAI.BadRequestError && error.code === "context_length_exceeded",
  );
  await assert.rejects(
    client.chat.completions.create({ model: "nowhere", messages }),
    (error) => error instanceof OpenAI.NotFoundError,
  );
});
