"""Calls the MCP tool `answer_question` once with the official MCP Python SDK, over streamable HTTP,
and prints the result as one line: `RESULT {"is_error", "structured", "text"}`.

Driven by crates/cairn-cli/tests/it/front_doors.rs and agents.rs, which pass in:

  CAIRN_MCP_URL    http://127.0.0.1:PORT/mcp
  CAIRN_KEY        an API key that may call the tool (unset: none sent, as the local user)
  CAIRN_APP        the app to ask, or
  CAIRN_AGENT      the agent to delegate the question to
  CAIRN_QUESTION   the question
"""

import asyncio
import json
import os

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    key = os.environ.get("CAIRN_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if "CAIRN_AGENT" in os.environ:
        target = {"agent": os.environ["CAIRN_AGENT"]}
    else:
        target = {"app": os.environ["CAIRN_APP"]}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(os.environ["CAIRN_MCP_URL"], http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(
                    "answer_question",
                    {**target, "question": os.environ["CAIRN_QUESTION"]},
                )
    texts = [c.text for c in result.content if getattr(c, "text", None) is not None]
    print("RESULT " + json.dumps({"is_error": bool(result.is_error), "structured": result.structured_content, "text": texts}))


asyncio.run(main())
