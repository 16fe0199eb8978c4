"""The official `openai` Python package against a running `cairn serve`.

Run by crates/cairn-cli/tests/it (openai_python_client_is_compatible), which starts a scripted
upstream and Cairn with these models: `default` (a route whose first target is down, so it falls
back), `agent` (answers with a tool call), `small` (refuses: context length exceeded), and `local`
(SmolLM2-135M-Instruct running inside Cairn through mistral.rs), and the embedding model
all-MiniLM-L6-v2 (in process, candle).
Environment: CAIRN_BASE_URL, e.g. http://127.0.0.1:PORT/v1.
"""

import base64
import json
import os
import struct
import unittest

import openai

client = openai.OpenAI(base_url=os.environ["CAIRN_BASE_URL"], api_key="not-needed", max_retries=0)
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello?"},
]


class OpenAiClientCompatibility(unittest.TestCase):
    def test_lists_models(self):
        ids = sorted(model.id for model in client.models.list())
        self.assertEqual(ids, ["agent", "all-MiniLM-L6-v2", "backup", "default", "local", "primary", "small"])

    def test_embeddings(self):
        pair = ["A man is eating food.", "A man is eating a piece of bread."]
        # Without encoding_format the client asks for base64 and decodes it; with "float", JSON
        # numbers; with "base64" it hands back the little-endian float32 string.
        responses = [
            client.embeddings.create(model="all-MiniLM-L6-v2", input=pair),
            client.embeddings.create(model="all-MiniLM-L6-v2", input=pair, encoding_format="float"),
        ]
        raw = client.embeddings.create(model="all-MiniLM-L6-v2", input=pair, encoding_format="base64")
        decoded = [list(struct.unpack("<384f", base64.b64decode(d.embedding))) for d in raw.data]
        for vectors in [[d.embedding for d in r.data] for r in responses] + [decoded]:
            a, b = vectors
            self.assertEqual(len(a), 384)
            self.assertAlmostEqual(sum(x * x for x in a), 1.0, places=3)
            # The same pair as the reference fixture (crates/cairn-candle/tests/fixtures).
            self.assertAlmostEqual(sum(x * y for x, y in zip(a, b)), 0.7553, places=3)
        self.assertEqual([d.index for d in responses[0].data], [0, 1])
        self.assertGreater(responses[0].usage.prompt_tokens, 10)
        with self.assertRaises(openai.NotFoundError) as caught:
            client.embeddings.create(model="text-embedding-3-small", input="hello")
        self.assertIn("all-MiniLM-L6-v2", str(caught.exception))

    def test_chat_completion(self):
        response = client.chat.completions.create(model="default", messages=MESSAGES, temperature=0.1)
        self.assertEqual(response.object, "chat.completion")
        self.assertEqual(response.model, "default")
        self.assertEqual(response.choices[0].message.role, "assistant")
        self.assertEqual(response.choices[0].message.content, "answer from good")
        self.assertEqual(response.choices[0].finish_reason, "stop")
        self.assertEqual(response.usage.total_tokens, 15)
        self.assertEqual(response.usage.prompt_tokens_details.cached_tokens, 4)

    def test_streaming_with_usage(self):
        chunks = list(
            client.chat.completions.create(
                model="default", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        self.assertEqual(text, "Hi there")
        finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
        self.assertEqual(finishes, ["stop"])
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.total_tokens, 9)

    def test_tool_calls(self):
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                },
            }
        ]
        response = client.chat.completions.create(model="agent", messages=MESSAGES, tools=tools, tool_choice="auto")
        self.assertEqual(response.choices[0].finish_reason, "tool_calls")
        call = response.choices[0].message.tool_calls[0]
        self.assertEqual(call.function.name, "get_weather")
        self.assertEqual(json.loads(call.function.arguments), {"city": "Oslo"})

        follow_up = MESSAGES + [
            response.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "12°C, cloudy"},
        ]
        answer = client.chat.completions.create(model="default", messages=follow_up)
        self.assertEqual(answer.choices[0].message.content, "answer from good")

        streamed = list(client.chat.completions.create(model="agent", messages=MESSAGES, tools=tools, stream=True))
        calls = [call for chunk in streamed if chunk.choices for call in (chunk.choices[0].delta.tool_calls or [])]
        self.assertEqual(len(calls), 1)
        self.assertEqual(json.loads(calls[0].function.arguments), {"city": "Oslo"})

    def test_errors_are_typed(self):
        with self.assertRaises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="gpt-unknown", messages=MESSAGES)
        self.assertEqual(caught.exception.code, "model_not_found")
        self.assertIn("agent, backup, default, local, primary, small", caught.exception.message)

        with self.assertRaises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="small", messages=MESSAGES)
        self.assertEqual(caught.exception.code, "context_length_exceeded")

        with self.assertRaises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="default", messages=MESSAGES, n=2)
        self.assertIn("`n` must be 1", caught.exception.message)


class LocalModel(unittest.TestCase):
    """The same client against a model running in Cairn's process."""

    def test_chat_and_stream(self):
        question = [{"role": "user", "content": "What is the capital of France?"}]
        response = client.chat.completions.create(model="local", messages=question, temperature=0, max_tokens=8)
        self.assertTrue(response.choices[0].message.content.strip())
        self.assertIn(response.choices[0].finish_reason, ("stop", "length"))
        self.assertGreater(response.usage.prompt_tokens, 5)
        self.assertLessEqual(response.usage.completion_tokens, 8)

        chunks = list(
            client.chat.completions.create(
                model="local", messages=question, temperature=0, max_tokens=8, stream=True,
                stream_options={"include_usage": True},
            )
        )
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        self.assertEqual(streamed, response.choices[0].message.content, "greedy decoding streams the same answer")
        self.assertEqual(chunks[-1].usage.completion_tokens, response.usage.completion_tokens)


if __name__ == "__main__":
    unittest.main(verbosity=2)
