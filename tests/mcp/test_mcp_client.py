"""The official MCP Python SDK (`mcp`) against a real `cairn`, over stdio or streamable HTTP.

Driven by crates/cairn-cli/tests/it/mcp.rs, which ingests two collections (`handbook`, readable,
and `finance`, which the HTTP keys may not read), creates API keys, and passes in:

  CAIRN_MCP_TRANSPORT   stdio | http
  CAIRN_BIN, CAIRN_DIR  the binary and its working directory (stdio: `cairn mcp` runs there)
  CAIRN_MCP_URL         http://127.0.0.1:PORT/mcp (http)
  CAIRN_KEY_FULL        every tool, collection `handbook` (http)
  CAIRN_KEY_LIMITED     search_knowledge and list_collections only, `handbook` (http)
  CAIRN_KEY_REVOKED     a revoked key (http)
  CAIRN_EXPECTED        JSON: {"query", "chunk_ids"} from `cairn search --json`, and the id of a
                        `finance` document
"""

import asyncio
import json
import os
import unittest
import urllib.error
import urllib.request

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

TRANSPORT = os.environ["CAIRN_MCP_TRANSPORT"]
EXPECTED = json.loads(os.environ["CAIRN_EXPECTED"])
TOOLS = {
    "search_knowledge",
    "answer_question",
    "check_text",
    "list_collections",
    "get_document",
    "list_prompts",
    "get_prompt",
    "render_prompt",
    "run_eval_suite",
}
INVALID_PARAMS = -32602


async def with_session(body, key_env="CAIRN_KEY_FULL"):
    """Runs `body(session)` on an initialized session over the transport under test."""
    if TRANSPORT == "stdio":
        params = StdioServerParameters(
            command=os.environ["CAIRN_BIN"],
            args=["mcp"],
            cwd=os.environ["CAIRN_DIR"],
            env={k: v for k, v in os.environ.items() if k.startswith("CAIRN__")},
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                result = await session.initialize()
                return await body(session, result)
    headers = {"Authorization": f"Bearer {os.environ[key_env]}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(os.environ["CAIRN_MCP_URL"], http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                result = await session.initialize()
                return await body(session, result)


def run(body, key_env="CAIRN_KEY_FULL"):
    return asyncio.run(with_session(body, key_env))


def structured(result):
    assert not result.is_error, result.content
    return result.structured_content


class EveryTransport(unittest.TestCase):
    def test_initialize_announces_tools_prompts_and_resources(self):
        async def body(session, init):
            self.assertEqual(init.server_info.name, "cairn")
            caps = init.capabilities
            self.assertIsNotNone(caps.tools)
            self.assertIsNotNone(caps.prompts)
            self.assertIsNotNone(caps.resources)

        run(body)

    def test_tools_have_schemas_and_short_descriptions(self):
        async def body(session, _):
            tools = (await session.list_tools()).tools
            self.assertEqual({t.name for t in tools}, TOOLS)
            for tool in tools:
                self.assertEqual(tool.input_schema["type"], "object", tool.name)
                self.assertIsNotNone(tool.output_schema, tool.name)
                self.assertLess(len(tool.description), 100, tool.name)
            search = next(t for t in tools if t.name == "search_knowledge")
            self.assertEqual(set(search.input_schema["required"]), {"query", "collection"})
            # What an agent pays for in context: every tool's name, description and input schema.
            text = sum(len(t.name) + len(t.description) + len(json.dumps(t.input_schema)) for t in tools)
            self.assertLess(text, 4000)

        run(body)

    def test_search_knowledge_returns_what_cairn_search_returns(self):
        async def body(session, _):
            result = await session.call_tool(
                "search_knowledge", {"query": EXPECTED["query"], "collection": "handbook"}
            )
            passages = structured(result)["passages"]
            self.assertEqual([p["chunk_id"] for p in passages], EXPECTED["chunk_ids"])
            first = passages[0]
            self.assertEqual(first["n"], 1)
            self.assertTrue(first["source"].endswith("database.md"), first)
            self.assertIn("PostgreSQL", first["text"])
            self.assertGreater(first["score"], 0)
            self.assertTrue(first["resource"].startswith("cairn://collections/handbook/documents/"))
            # The text content mirrors the structured content, for clients that read only text.
            self.assertEqual(json.loads(result.content[0].text)["passages"][0]["chunk_id"], first["chunk_id"])

        run(body)

    def test_search_filters_on_metadata(self):
        async def body(session, _):
            result = await session.call_tool(
                "search_knowledge",
                {"query": "slow build", "collection": "handbook", "filters": {"format": "markdown"}},
            )
            passages = structured(result)["passages"]
            self.assertTrue(passages)
            self.assertTrue(all(p["source"].endswith(".md") for p in passages), passages)

        run(body)

    def test_answer_question_from_an_app_and_from_a_collection(self):
        async def body(session, _):
            for target in ({"app": "handbook"}, {"collection": "handbook"}):
                result = await session.call_tool(
                    "answer_question", {"question": "Where is the catalog kept with PostgreSQL?", **target}
                )
                answer = structured(result)
                self.assertEqual(answer["answer"], "answer from good", target)
                self.assertTrue(answer["citations"], target)
                self.assertEqual(answer["citations"][0]["index"], 1)
                self.assertEqual(answer["prompt"], "rag_answer@v1")
                self.assertTrue(answer["lineage_id"])

        run(body)

    def test_an_eval_suite_runs_by_name_and_is_stored(self):
        async def body(session, _):
            ran = structured(await session.call_tool("run_eval_suite", {"suite": "handbook"}))
            self.assertEqual(ran["suite"], "handbook-smoke")
            self.assertTrue(ran["passed"], ran)
            first = ran["runs"][0]
            self.assertEqual(first["target"], "app:handbook")
            self.assertEqual(first["metrics"][0]["mean"], 1.0, first)
            self.assertEqual(first["failing_cases"], [])
            self.assertTrue(first["run_id"], first)
            outside = await session.call_tool("run_eval_suite", {"suite": "../cairn"})
            self.assertTrue(outside.is_error)
            self.assertIn("is not a suite name", outside.content[0].text)
            missing = await session.call_tool("run_eval_suite", {"suite": "nope"})
            self.assertTrue(missing.is_error)
            self.assertIn("suites: handbook", missing.content[0].text)

        run(body)

    def test_check_text_runs_named_guardrails(self):
        async def body(session, _):
            checked = structured(
                await session.call_tool(
                    "check_text", {"guards": ["pii"], "text": "Mail jane.doe@example.com about it"}
                )
            )
            self.assertEqual(checked["action"], "redact")
            self.assertEqual(checked["text"], "Mail <EMAIL_1> about it")
            self.assertEqual(checked["verdicts"][0]["findings"], {"email": 1})
            refused = await session.call_tool("check_text", {"guards": ["nope"], "text": "x"})
            self.assertTrue(refused.is_error)
            self.assertIn("guard `nope` is not declared", refused.content[0].text)

        run(body)

    def test_list_collections_and_get_document(self):
        async def body(session, _):
            collections = structured(await session.call_tool("list_collections", {}))["collections"]
            handbook = next(c for c in collections if c["name"] == "handbook")
            self.assertEqual(handbook["documents"], 3)
            search = structured(
                await session.call_tool("search_knowledge", {"query": "brew install", "collection": "handbook"})
            )
            passage = search["passages"][0]
            document = structured(await session.call_tool("get_document", {"id": passage["document_id"]}))
            self.assertEqual(document["collection"], "handbook")
            self.assertIn("brew install cairn", document["text"])
            self.assertEqual(document["end"], document["total_chars"])
            part = structured(
                await session.call_tool(
                    "get_document",
                    {"id": passage["document_id"], "start": passage["char_start"], "end": passage["char_end"]},
                )
            )
            self.assertEqual(part["text"].strip(), passage["text"].strip())

        run(body)

    def test_prompt_tools(self):
        async def body(session, _):
            prompts = structured(await session.call_tool("list_prompts", {}))["prompts"]
            rag = next(p for p in prompts if p["name"] == "rag_answer")
            self.assertEqual(rag["labels"]["production"], 1)
            shown = structured(await session.call_tool("get_prompt", {"prompt": "rag_answer@production"}))
            self.assertEqual(shown["version"], 1)
            self.assertIn("question", shown["variables"]["properties"])
            rendered = structured(
                await session.call_tool(
                    "render_prompt",
                    {
                        "prompt": "rag_answer@1",
                        "variables": {"question": "Why?", "passages": [{"title": "T", "text": "Because."}]},
                    },
                )
            )
            self.assertEqual(rendered["messages"][0]["role"], "system")
            self.assertIn("[1] T", rendered["messages"][0]["content"])
            self.assertEqual(rendered["messages"][-1]["content"].strip(), "Why?")
            missing = await session.call_tool("render_prompt", {"prompt": "rag_answer", "variables": {}})
            self.assertTrue(missing.is_error)
            self.assertIn("question", missing.content[0].text)

        run(body)

    def test_registry_prompts_through_the_prompts_capability(self):
        async def body(session, _):
            prompts = (await session.list_prompts()).prompts
            rag = next(p for p in prompts if p.name == "rag_answer")
            arguments = {a.name: a for a in rag.arguments}
            self.assertTrue(arguments["question"].required)
            self.assertIn("JSON array", arguments["passages"].description)
            result = await session.get_prompt(
                "rag_answer",
                {"question": "Where?", "passages": json.dumps([{"title": "Doc", "text": "Here."}])},
            )
            texts = [m.content.text for m in result.messages]
            self.assertTrue(any("[1] Doc" in t for t in texts), texts)
            self.assertEqual(texts[-1].strip(), "Where?")

        run(body)

    def test_documents_as_resources(self):
        async def body(session, _):
            resources = (await session.list_resources()).resources
            uris = [str(r.uri) for r in resources]
            self.assertEqual(len([u for u in uris if u.startswith("cairn://collections/handbook/")]), 3)
            install = next(r for r in resources if r.name == "Installing Cairn")
            read = await session.read_resource(str(install.uri))
            self.assertIn("brew install cairn", read.contents[0].text)
            templates = (await session.list_resource_templates()).resource_templates
            self.assertEqual(templates[0].uri_template, "cairn://collections/{collection}/documents/{id}")

        run(body)

    def test_invalid_arguments_point_at_the_schema(self):
        async def body(session, _):
            for arguments, field in (
                ({"collection": "handbook"}, "query"),
                ({"query": "x", "collection": "handbook", "top_k": 500}, "top_k"),
                ({"query": "x", "collection": "handbook", "colection": "typo"}, "colection"),
            ):
                with self.assertRaises(MCPError) as raised:
                    await session.call_tool("search_knowledge", arguments)
                self.assertEqual(raised.exception.code, INVALID_PARAMS)
                self.assertIn(field, str(raised.exception.error.message))
                self.assertIn("inputSchema", raised.exception.error.message)
            with self.assertRaises(MCPError):
                await session.call_tool("drop_everything", {})

        run(body)

    def test_an_unknown_collection_is_a_tool_error(self):
        async def body(session, _):
            result = await session.call_tool("search_knowledge", {"query": "x", "collection": "nope"})
            self.assertTrue(result.is_error)
            self.assertIn("does not exist", result.content[0].text)

        run(body)


@unittest.skipUnless(TRANSPORT == "http", "HTTP only: stdio runs as the local user")
class HttpAuth(unittest.TestCase):
    def post_without(self, authorization=None):
        request = urllib.request.Request(
            os.environ["CAIRN_MCP_URL"],
            data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(),
            headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
            method="POST",
        )
        if authorization:
            request.add_header("Authorization", authorization)
        with self.assertRaises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        return raised.exception

    def test_a_missing_token_gets_401_with_the_resource_metadata_hint(self):
        error = self.post_without()
        self.assertEqual(error.code, 401)
        challenge = error.headers["WWW-Authenticate"]
        self.assertTrue(challenge.startswith("Bearer "), challenge)
        base = os.environ["CAIRN_MCP_URL"].removesuffix("/mcp")
        metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
        self.assertIn(f'resource_metadata="{metadata_url}"', challenge)
        with urllib.request.urlopen(metadata_url, timeout=10) as response:
            metadata = json.load(response)
        self.assertEqual(metadata["resource"], os.environ["CAIRN_MCP_URL"])
        self.assertEqual(metadata["bearer_methods_supported"], ["header"])
        body = json.loads(error.read())
        self.assertNotIn("handbook", json.dumps(body))

    def test_unknown_and_revoked_keys_get_401_invalid_token(self):
        for authorization in ("Bearer cairn_not_a_key", f"Bearer {os.environ['CAIRN_KEY_REVOKED']}"):
            error = self.post_without(authorization)
            self.assertEqual(error.code, 401)
            self.assertIn('error="invalid_token"', error.headers["WWW-Authenticate"])

    def test_a_forbidden_collection_looks_like_a_missing_one(self):
        async def body(session, _):
            messages = []
            for collection in ("finance", "nope"):
                result = await session.call_tool("search_knowledge", {"query": "budget", "collection": collection})
                self.assertTrue(result.is_error, collection)
                messages.append(result.content[0].text.replace(collection, "X"))
            self.assertEqual(messages[0], messages[1])
            names = [c["name"] for c in structured(await session.call_tool("list_collections", {}))["collections"]]
            self.assertEqual(names, ["handbook"])
            finance_doc = EXPECTED["finance_document_id"]
            hidden = await session.call_tool("get_document", {"id": finance_doc})
            self.assertTrue(hidden.is_error)
            self.assertNotIn("finance", hidden.content[0].text)
            for uri in (
                f"cairn://collections/finance/documents/{finance_doc}",
                f"cairn://collections/handbook/documents/{finance_doc}",
            ):
                with self.assertRaises(MCPError):
                    await session.read_resource(uri)
            uris = [str(r.uri) for r in (await session.list_resources()).resources]
            self.assertFalse([u for u in uris if "/finance/" in u], uris)
            for target in ({"collection": "finance"}, {"app": "budget"}):
                answer = await session.call_tool("answer_question", {"question": "budget?", **target})
                self.assertTrue(answer.is_error, target)
                self.assertNotIn("travel", answer.content[0].text)

        run(body)

    def test_a_limited_key_sees_and_calls_only_its_tools(self):
        async def body(session, _):
            tools = {t.name for t in (await session.list_tools()).tools}
            self.assertEqual(tools, {"search_knowledge", "list_collections"})
            for name, arguments in (
                ("answer_question", {"question": "x", "app": "handbook"}),
                ("get_document", {"id": EXPECTED["finance_document_id"]}),
                ("render_prompt", {"prompt": "rag_answer"}),
            ):
                with self.assertRaises(MCPError) as raised:
                    await session.call_tool(name, arguments)
                self.assertIn("not available to this key", raised.exception.error.message)
            self.assertEqual((await session.list_prompts()).prompts, [])
            self.assertEqual((await session.list_resources()).resources, [])
            allowed = await session.call_tool("search_knowledge", {"query": "brew", "collection": "handbook"})
            self.assertFalse(allowed.is_error)

        run(body, key_env="CAIRN_KEY_LIMITED")


if __name__ == "__main__":
    unittest.main(verbosity=2)
