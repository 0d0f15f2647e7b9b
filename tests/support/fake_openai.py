"""A local OpenAI-compatible HTTP server for the generation tests and benchmark.

Speaks the parts of the API that ``generate.py`` uses: Chat Completions, Files (upload, content) and Batches
(create, retrieve, list), on 127.0.0.1 with port 0, with injected latency and faults, so the real ``openai``
client is exercised over real sockets. Token usage is deterministic: ``ceil(utf8_bytes / 4)`` per text, plus
3 per message and 3 for the reply, so tests can predict costs exactly.

Faults, for chat requests: one-shot faults queued with :meth:`FakeOpenAI.inject` (consumed in order), faults
tied to a comment (``fault_for_text``), and a seeded random ``fault_rate`` over ``random_faults`` (1.0: every
call). Kinds, as OpenAI, Azure OpenAI, vLLM, Ollama and gateways have been reported to answer:
``429`` (rate limited, with ``retry-after-ms``), ``429_long`` (``Retry-After: 3600``), ``500``, ``503``,
``502`` (an HTML "Bad Gateway" page), ``slow`` (answers after ``slow_s``, longer than the client's timeout),
``drop`` (closes the connection mid-response), ``truncate`` (``finish_reason`` ``length``), ``refusal``,
``quota`` (429 ``insufficient_quota``), ``auth`` (401, as for a revoked key), ``html`` (a 200 sign-in page,
``text/html``), ``surrogate`` (content ending in a lone ``\\ud83d`` escape), ``eos`` (vLLM's
finish_reason), ``network_error`` (content cut after 25 characters, ``finish_reason: network_error``),
``gateway_error`` (a 200 whose body is only ``{"error": {"message", "code": 502}}``), ``content_filter``
(Azure's 400 ``code=content_filter``, ``param=prompt``), ``unsupported_parameter`` (400), ``echo_key`` (an
item-level 400 whose message echoes the Authorization header), ``think`` (a ``<think>`` block before the
answer), ``empty`` (no content, nothing billed).

Server-wide behaviours: ``usage_style`` (``full``, ``no_total``: no ``total_tokens``, ``none``: no usage),
``reasoning_models`` (reject ``max_tokens`` and a non-default temperature, like OpenAI's o-series),
``list_batches`` (False: ``GET /v1/batches`` is 404, as on servers with create/retrieve only),
``refuse_batches`` (creating a batch is a 400) and ``batch_token_limit`` (a batch whose prompt tokens exceed
it fails validation with ``token_limit_exceeded``).

Run standalone (the benchmark does): ``python tests/support/fake_openai.py --latency 0.2``; it prints
``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

FAULT_KINDS = (
    "429",
    "429_long",
    "500",
    "502",
    "503",
    "slow",
    "drop",
    "truncate",
    "refusal",
    "quota",
    "auth",
    "html",
    "surrogate",
    "eos",
    "network_error",
    "gateway_error",
    "content_filter",
    "unsupported_parameter",
    "echo_key",
    "think",
    "empty",
)
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>"
PROMPT_FIELDS = re.compile(r"댓글: (?P<text>.*)\n감정: (?P<labels>.*)\n", re.DOTALL)
DEFAULT_ALIASES = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}


def count_tokens(text: str) -> int:
    """The fake tokenizer: a quarter of the UTF-8 bytes, rounded up (0.75 tokens per Hangul syllable)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(count_tokens(str(m.get("content") or "")) + 3 for m in messages) + 3


@dataclass
class ChatLog:
    """One chat request as the server saw it (batch lines are logged too, with ``via_batch``)."""

    model: str
    text: str | None
    fault: str | None
    authorization: str | None
    via_batch: bool = False
    arrived: float = field(default_factory=time.monotonic)
    request: dict[str, Any] = field(default_factory=dict, repr=False)
    """The request body as sent (a batch line's ``body``)."""


@dataclass
class FakeOpenAI:
    """Server state and handlers; run it with :class:`ServerThread` or :func:`main`."""

    api_key: str = "sk-fake-test-key"
    models: tuple[str, ...] = ("gpt-4o-mini",)
    latency_s: float = 0.0
    slow_s: float = 5.0
    retry_after_ms: int = 50
    retry_after_s: int | None = None  # set: 429s carry ``Retry-After: <s>`` instead of ``retry-after-ms``
    fault_rate: float = 0.0
    random_faults: tuple[str, ...] = ("429", "500", "503")
    seed: int = 0
    batch_delay_s: float = 0.05
    usage_style: str = "full"
    reasoning_models: tuple[str, ...] = ()
    list_batches: bool = True
    batch_token_limit: int | None = None
    refuse_batches: bool = False
    replies: dict[str, str] = field(default_factory=dict)
    fault_for_text: dict[str, str] = field(default_factory=dict)
    chats: list[ChatLog] = field(default_factory=list)
    paths: Counter[str] = field(default_factory=Counter)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _queue: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def inject(self, *faults: str) -> None:
        """Queue one-shot faults for the next chat requests, in order."""
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        with self._lock:
            self._queue.extend(faults)

    def chat_texts(self, *, via_batch: bool = False) -> list[str]:
        """Comment texts of the chat requests received so far (online or batch lines)."""
        return [c.text for c in self.chats if c.text is not None and c.via_batch == via_batch]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_delete("/v1/files/{file_id}", self._delete_file)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self._retrieve_batch)
        app.router.add_get("/_stats", self._stats)
        return app

    # -- chat ---------------------------------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    def _pick_fault(self, text: str | None) -> str | None:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            for needle, fault in self.fault_for_text.items():
                if text is not None and needle in text:
                    return fault
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.random_faults)
        return None

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.paths[request.path] += 1
        body = await request.json()
        messages = body.get("messages", [])
        user = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
        match = PROMPT_FIELDS.search(user)
        text = match["text"] if match else None
        presented = request.headers.get("Authorization")
        fault = self._pick_fault(text) if self._authorized(request) else "auth"
        self.chats.append(ChatLog(body.get("model", ""), text, fault, presented, request=body))
        if fault == "auth":
            # Echo the key back, as careless servers do: the client must keep it out of logs anyway.
            message = f"Incorrect API key provided: {str(presented).removeprefix('Bearer ')}."
            return _error(401, message, "invalid_request_error", "invalid_api_key")
        if fault == "html":
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        if fault == "drop":
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = 4096
            await response.prepare(request)
            await response.write(b'{"id": "chatcmpl-torn", "choi')
            assert request.transport is not None
            request.transport.close()
            return response
        status, payload, headers = self._complete(body, fault, presented)
        if isinstance(payload, str):
            return web.Response(text=payload, status=status, content_type="text/html", headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    def _rejected_parameter(self, body: dict[str, Any]) -> str | None:
        """What an OpenAI reasoning model says about parameters it does not accept (None: all fine)."""
        if body.get("model") not in self.reasoning_models:
            return None
        if "max_tokens" in body:
            return (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens'."
            )
        if body.get("temperature", 1) != 1:
            return (
                "Unsupported value: 'temperature' does not support 0.7 with this model. Only 1 is supported."
            )
        return None

    def _complete(
        self, body: dict[str, Any], fault: str | None, presented: str | None = None
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        """Status, body (JSON object, or text) and headers of one chat completion; online and batch alike."""
        model = body.get("model")
        if model not in self.models:
            return _error_body(
                404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found"
            )
        rejected = self._rejected_parameter(body)
        if rejected is not None or fault == "unsupported_parameter":
            message = rejected or "Unsupported parameter: 'temperature'."
            return _error_body(400, message, "unsupported_parameter")
        if fault == "429":
            payload = _error_body(429, "Rate limit reached for requests.", "rate_limit_exceeded")[1]
            if self.retry_after_s is not None:
                return 429, payload, {"retry-after": str(self.retry_after_s)}
            return 429, payload, {"retry-after-ms": str(self.retry_after_ms)}
        if fault == "429_long":
            payload = _error_body(429, "Rate limit reached for requests.", "rate_limit_exceeded")[1]
            return 429, payload, {"retry-after": "3600"}
        if fault == "quota":
            return _error_body(429, "You exceeded your current quota.", "insufficient_quota")
        if fault in ("500", "503"):
            return _error_body(int(fault), "The server had an error while processing your request.", None)
        if fault == "502":
            return (
                502,
                "<html><head><title>502 Bad Gateway</title></head><body>upstream down</body></html>",
                {},
            )
        if fault == "html":
            return 200, SIGN_IN_PAGE, {}
        if fault == "gateway_error":
            return 200, {"error": {"message": "upstream provider unavailable", "code": 502}}, {}
        if fault == "content_filter":  # Azure OpenAI's answer to a prompt its filter flags
            error = {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
            return 400, {"error": error}, {}
        if fault == "echo_key":
            shown = presented or f"Bearer {self.api_key}"
            message = (
                f"This model's maximum context length is 16 tokens (request headers: Authorization: {shown})"
            )
            return _error_body(400, message, "context_length_exceeded")
        messages = body.get("messages", [])
        user = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
        content, finish, refusal = self._reply(user), "stop", None
        completion = count_tokens(content)
        if fault == "truncate":
            max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            content, finish, completion = content[: len(content) // 3], "length", max_tokens
        elif fault == "refusal":
            content, refusal, completion = None, "I'm sorry, I can't help with that.", 9
        elif fault == "surrogate":
            content += "\ud83d"  # half of an emoji: json.dumps writes it as the lone escape \ud83d
        elif fault == "eos":
            finish = "eos"
        elif fault == "network_error":
            content, finish, completion = content[:25], "network_error", 10
        elif fault == "think":
            content = "<think>The labels say joy; find the cue words.</think>\n" + content
            completion += 12
        elif fault == "empty":
            content, completion = "", 0
        usage_prompt = prompt_tokens(messages)
        payload = {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": DEFAULT_ALIASES.get(str(model), str(model)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": usage_prompt,
                "completion_tokens": completion,
                "total_tokens": usage_prompt + completion,
            },
        }
        if self.usage_style == "no_total":
            del payload["usage"]["total_tokens"]
        elif self.usage_style == "none":
            del payload["usage"]
        return 200, payload, {}

    def _reply(self, user: str) -> str:
        match = PROMPT_FIELDS.search(user)
        if match is None:
            return "주어진 글의 표현과 맥락을 근거로 감정을 추론했다."
        text, labels = match["text"], match["labels"]
        if text in self.replies:
            return self.replies[text]
        return (
            f'"{text[:40]}"라는 표현에서 글쓴이의 태도가 드러난다. '
            f"어조와 문장부호를 보면 {labels}의 감정으로 읽힌다. "
            "상황을 어떻게 받아들이느냐에 따라 평가자마다 조금씩 다른 감정을 붙였을 것이다."
        )

    # -- files and batches ------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        self.paths[request.path] += 1
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        form = await request.post()
        upload = form["file"]
        data = upload.file.read() if isinstance(upload, web.FileField) else str(upload).encode()
        file_id = self._next_id("file")
        self.files[file_id] = data
        return web.json_response(_file_object(file_id, data, str(form.get("purpose", "batch"))))

    async def _file_content(self, request: web.Request) -> web.Response:
        self.paths["/v1/files/content"] += 1
        data = self.files.get(request.match_info["file_id"])
        if data is None:
            return _error(404, "No such file.", "invalid_request_error", None)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _delete_file(self, request: web.Request) -> web.Response:
        self.paths["/v1/files/delete"] += 1
        file_id = request.match_info["file_id"]
        self.files.pop(file_id, None)
        return web.json_response({"id": file_id, "object": "file", "deleted": True})

    async def _create_batch(self, request: web.Request) -> web.Response:
        self.paths[request.path] += 1
        body = await request.json()
        input_id = body["input_file_id"]
        if input_id not in self.files:
            return _error(400, f"Invalid input_file_id {input_id}.", "invalid_request_error", None)
        if self.refuse_batches:
            return _error(
                400, "The Batch API is not available for this project.", "invalid_request_error", None
            )
        batch_id = self._next_id("batch")
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": input_id,
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": int(time.time()),
            "metadata": body.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        self.batches[batch_id] = batch
        asyncio.get_running_loop().create_task(self._process_batch(batch))
        return web.json_response(batch)

    async def _process_batch(self, batch: dict[str, Any]) -> None:
        await asyncio.sleep(self.batch_delay_s)
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]].splitlines() if line.strip()]
        enqueued = sum(prompt_tokens(line["body"]["messages"]) for line in lines)
        batch["enqueued_tokens"] = enqueued
        if self.batch_token_limit is not None and enqueued > self.batch_token_limit:
            message = f"Enqueued token limit reached: {enqueued} > {self.batch_token_limit}."
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "token_limit_exceeded", "message": message}],
            }
            return
        batch["status"] = "in_progress"
        batch["request_counts"]["total"] = len(lines)
        outputs: list[bytes] = []
        errors: list[bytes] = []
        for line in lines:
            body = line["body"]
            user = next((str(m["content"]) for m in body["messages"] if m["role"] == "user"), "")
            match = PROMPT_FIELDS.search(user)
            text = match["text"] if match else None
            fault = self._pick_fault(text)
            self.chats.append(ChatLog(body.get("model", ""), text, fault, None, via_batch=True, request=body))
            status, payload, _ = self._complete(body, fault)
            out = {
                "id": self._next_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": self._next_id("req"), "body": payload},
                "error": None,
            }
            (outputs if status == 200 else errors).append(json.dumps(out).encode() + b"\n")
            batch["request_counts"]["completed" if status == 200 else "failed"] += 1
        await asyncio.sleep(self.batch_delay_s)
        for name, chunk in (("output_file_id", outputs), ("error_file_id", errors)):
            if chunk:
                file_id = self._next_id("file")
                self.files[file_id] = b"".join(chunk)
                batch[name] = file_id
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())

    async def _retrieve_batch(self, request: web.Request) -> web.Response:
        self.paths["/v1/batches/retrieve"] += 1
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "No such batch.", "invalid_request_error", None)
        return web.json_response(batch)

    async def _list_batches(self, request: web.Request) -> web.Response:
        self.paths["/v1/batches/list"] += 1
        if not self.list_batches:
            return _error(404, "Not Found", "invalid_request_error", None)
        data = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def _stats(self, request: web.Request) -> web.Response:
        faults = Counter(c.fault for c in self.chats if c.fault)
        arrived = [c.arrived for c in self.chats]  # time.monotonic(): one clock for every process here
        span = {"first_arrived": min(arrived), "last_arrived": max(arrived)} if arrived else {}
        return web.json_response({"chat_requests": len(self.chats), "faults": dict(faults), **span})


def _error_body(status: int, message: str, code: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    kind = {429: "requests", 404: "invalid_request_error"}.get(status, "server_error")
    if code == "insufficient_quota":
        kind = "insufficient_quota"
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, {}


def _error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(payload, status=status)


def _file_object(file_id: str, data: bytes, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": "input.jsonl",
        "purpose": purpose,
        "status": "processed",
    }


class ServerThread:
    """Runs a :class:`FakeOpenAI` on 127.0.0.1 (port 0) in a background thread with its own event loop."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ServerThread:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.fake.app(), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        """Close the server, then cancel handlers still sleeping (``slow`` faults, pending batches)."""
        if self._runner is not None:
            await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


async def _serve_forever(fake: FakeOpenAI) -> None:
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[attr-defined]
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-key", default="sk-fake-test-key")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each chat answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of chat requests that fail")
    parser.add_argument("--retry-after-ms", type=int, default=200)
    parser.add_argument("--retry-after-s", type=int, help="send Retry-After: <s> with 429s instead")
    parser.add_argument("--faults", default="429,500,503", help="kinds the fault rate draws from")
    parser.add_argument("--replies", help="JSONL with text and reasoning: answer those comments with them")
    args = parser.parse_args()
    replies: dict[str, str] = {}
    if args.replies:
        with open(args.replies, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                replies[record["text"]] = record["reasoning"]
    fake = FakeOpenAI(
        api_key=args.api_key,
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        retry_after_ms=args.retry_after_ms,
        retry_after_s=args.retry_after_s,
        random_faults=tuple(args.faults.split(",")),
        replies=replies,
    )
    asyncio.run(_serve_forever(fake))


if __name__ == "__main__":
    main()
