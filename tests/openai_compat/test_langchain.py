"""LangChain's OpenAI integration (`langchain-openai`, unchanged defaults) against a running `cairn serve`.

Run by crates/cairn-cli/tests/it/langchain.rs, which starts a scripted upstream and Cairn with the
models `backup` (answers `answer from good`; streamed `Hi there`), `agent` (answers with a
`get_weather` call), `json` (answers in prose first, JSON once told the schema) and the embedding
model all-MiniLM-L6-v2. `OpenAIEmbeddings` with its defaults cuts texts by OpenAI's cl100k_base
tokens and sends token ids; tiktoken reads that encoding from TIKTOKEN_CACHE_DIR (no download).
Environment: CAIRN_BASE_URL (http://127.0.0.1:PORT/v1), TIKTOKEN_CACHE_DIR.
"""

import math
import os
import unittest

import openai
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel

BASE = os.environ["CAIRN_BASE_URL"]


def chat(model):
    return ChatOpenAI(model=model, base_url=BASE, api_key="not-needed", max_retries=0)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


class Answer(BaseModel):
    answer: str


class LangChainCompatibility(unittest.TestCase):
    def test_invoke(self):
        message = chat("backup").invoke("Hello?")
        self.assertEqual(message.content, "answer from good")
        self.assertGreater(message.usage_metadata["input_tokens"], 0)

    def test_stream(self):
        text = "".join(chunk.content for chunk in chat("backup").stream("Hello?"))
        self.assertEqual(text, "Hi there")

    def test_tool_calls(self):
        message = chat("agent").bind_tools([get_weather]).invoke("Weather in Oslo?")
        self.assertEqual(len(message.tool_calls), 1)
        self.assertEqual(message.tool_calls[0]["name"], "get_weather")
        self.assertEqual(message.tool_calls[0]["args"], {"city": "Oslo"})

    def test_structured_output(self):
        # Cairn checks the answer against the schema and asks again once it is not met.
        result = chat("json").with_structured_output(Answer, method="json_schema").invoke("What is it?")
        self.assertEqual(result, Answer(answer="fixed"))

    def test_embeddings_with_default_settings(self):
        embeddings = OpenAIEmbeddings(model="all-MiniLM-L6-v2", base_url=BASE, api_key="not-needed", max_retries=0)
        texts = ["A man is eating food.", "A man is eating a piece of bread."]
        vectors = embeddings.embed_documents(texts)
        self.assertEqual([len(v) for v in vectors], [384, 384])
        # The token ids LangChain sent were read back as the same texts.
        direct = openai.OpenAI(base_url=BASE, api_key="not-needed").embeddings.create(
            model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
        for got, want in zip(vectors, direct.data):
            cosine = sum(a * b for a, b in zip(got, want.embedding)) / (
                math.sqrt(sum(a * a for a in got)) * math.sqrt(sum(b * b for b in want.embedding)))
            self.assertGreater(cosine, 0.9999)
        self.assertEqual(len(embeddings.embed_query("Where is the catalog kept?")), 384)


if __name__ == "__main__":
    unittest.main(verbosity=2)
