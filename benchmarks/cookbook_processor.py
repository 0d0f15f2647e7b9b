"""The openai-cookbook's parallel request processor, ported to run offline: the peer in
``generation_throughput.py``.

Ported from openai-cookbook ``examples/api_request_parallel_processor.py`` (commit 04a3090), which is

    MIT License, Copyright (c) 2023 OpenAI. Permission is hereby granted, free of charge, to any person
    obtaining a copy of this software and associated documentation files (the "Software"), to deal in the
    Software without restriction, including without limitation the rights to use, copy, modify, merge,
    publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
    Software is furnished to do so, subject to the following conditions: The above copyright notice and this
    permission notice shall be included in all copies or substantial portions of the Software. THE SOFTWARE
    IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
    WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
    CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
    DEALINGS IN THE SOFTWARE.

Its algorithm is kept step for step: a main loop that wakes every 1 ms, takes the next request (retries
first), refills request and token capacity continuously, starts one task per request with aiohttp when
both suffice, retries a failed request at once through a queue (up to ``max_attempts``), appends each result
to a JSONL file (open, write, close; no fsync), and sleeps 15 s after an error whose code is the string
``'429'`` (OpenAI's code is ``rate_limit_exceeded``, so that pause never happens against OpenAI or the fake
server: the original ignores Retry-After). Three changes, for the benchmark only: tokens are counted as
``ceil(UTF-8 bytes / 4)`` (the fake server's count; tiktoken cannot be installed offline here),
``--max-in-flight`` caps calls in flight (none by default, as the original) so both clients run at the same
concurrency, and logging is off.

    python benchmarks/cookbook_processor.py --requests requests.jsonl --results out.jsonl \\
        --url http://127.0.0.1:8000/v1/chat/completions --max-in-flight 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RATE_LIMIT_PAUSE_S = 15.0
LOOP_SLEEP_S = 0.001


@dataclass
class Status:
    in_progress: int = 0
    in_flight: int = 0
    succeeded: int = 0
    failed: int = 0
    last_rate_limit_error: float = 0.0


@dataclass
class Request:
    body: dict[str, Any]
    tokens: int
    attempts_left: int
    metadata: Any
    errors: list[str] = field(default_factory=list)

    async def call(
        self,
        session: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str],
        retry: asyncio.Queue[Request],
        results: str,
        status: Status,
    ) -> None:
        error: Any = None
        status.in_flight += 1
        try:
            async with session.post(url=url, headers=headers, json=self.body) as response:
                answer = await response.json(content_type=None)
            if "error" in answer:
                error = answer
                if answer["error"].get("code") == "429":
                    status.last_rate_limit_error = time.time()
        except Exception as exc:  # the original catches everything, records it and retries
            error = exc
        finally:
            status.in_flight -= 1
        if error is not None:
            self.errors.append(str(error))
            if self.attempts_left:
                retry.put_nowait(self)
                return
            append_jsonl([self.body, self.errors, self.metadata], results)
            status.failed += 1
        else:
            append_jsonl([self.body, answer, self.metadata], results)
            status.succeeded += 1
        status.in_progress -= 1


def append_jsonl(data: Any, path: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(data, ensure_ascii=False) + "\n")


def tokens_of(body: dict[str, Any]) -> int:
    prompt = sum(math.ceil(len(str(m["content"]).encode()) / 4) + 4 for m in body["messages"]) + 2
    return prompt + body.get("n", 1) * body.get("max_tokens", 15)


async def process(
    requests_path: str,
    results: str,
    url: str,
    api_key: str,
    max_requests_per_minute: float,
    max_tokens_per_minute: float,
    max_attempts: int,
    max_in_flight: int | None,
) -> Status:
    headers = {"Authorization": f"Bearer {api_key}"}
    retry: asyncio.Queue[Request] = asyncio.Queue()
    status = Status()
    pending: Request | None = None
    request_capacity, token_capacity = max_requests_per_minute, max_tokens_per_minute
    last_update = time.time()
    tasks: set[asyncio.Task[None]] = set()
    with open(requests_path, encoding="utf-8") as lines:
        unread = True
        async with aiohttp.ClientSession() as session:
            while True:
                if pending is None:
                    if not retry.empty():
                        pending = retry.get_nowait()
                    elif unread:
                        line = next(lines, None)
                        if line is None:
                            unread = False
                        else:
                            body = json.loads(line)
                            metadata = body.pop("metadata", None)
                            pending = Request(body, tokens_of(body), max_attempts, metadata)
                            status.in_progress += 1
                now = time.time()
                elapsed, last_update = now - last_update, now
                request_capacity = min(
                    request_capacity + max_requests_per_minute * elapsed / 60, max_requests_per_minute
                )
                token_capacity = min(
                    token_capacity + max_tokens_per_minute * elapsed / 60, max_tokens_per_minute
                )
                room = max_in_flight is None or status.in_flight < max_in_flight
                if (
                    pending is not None
                    and room
                    and request_capacity >= 1
                    and token_capacity >= pending.tokens
                ):
                    request_capacity -= 1
                    token_capacity -= pending.tokens
                    pending.attempts_left -= 1
                    task = asyncio.create_task(pending.call(session, url, headers, retry, results, status))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    pending = None
                if status.in_progress == 0:
                    break
                await asyncio.sleep(LOOP_SLEEP_S)
                since = time.time() - status.last_rate_limit_error
                if since < RATE_LIMIT_PAUSE_S:
                    await asyncio.sleep(RATE_LIMIT_PAUSE_S - since)
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", required=True, help="JSONL of Chat Completions bodies (+ metadata)")
    parser.add_argument("--results", required=True)
    parser.add_argument("--url", required=True, help="the chat completions URL")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", ""))
    parser.add_argument("--max-requests-per-minute", type=float, default=3_000 * 0.5)
    parser.add_argument("--max-tokens-per-minute", type=float, default=250_000 * 0.5)
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--max-in-flight", type=int, default=None)
    args = parser.parse_args()
    status = asyncio.run(
        process(
            args.requests,
            args.results,
            args.url,
            args.api_key,
            args.max_requests_per_minute,
            args.max_tokens_per_minute,
            args.max_attempts,
            args.max_in_flight,
        )
    )
    print(json.dumps({"succeeded": status.succeeded, "failed": status.failed}))


if __name__ == "__main__":
    main()
