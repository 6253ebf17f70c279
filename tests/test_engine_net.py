"""Net.httpRequest / sendMail and ApplicationStorage, against real local servers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from engine_helpers import engine_harness

from appliance.engine import limits


class Backend:
    """A local HTTP server that records requests and counts concurrency."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.active = 0
        self.max_active = 0
        self.port = 0
        self.release = asyncio.Event()

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append({"method": request.method, "path": request.path_qs, "body": body,
                              "headers": dict(request.headers)})
        return web.json_response({"method": request.method, "query": dict(request.query), "body": body,
                                  "ua": request.headers.get("User-Agent"),
                                  "x": request.headers.get("X-Test")}, headers={"X-Reply": "yes"})

    async def slow(self, request: web.Request) -> web.Response:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.wait_for(self.release.wait(), float(request.query.get("wait", "1")))
        except TimeoutError:
            pass
        finally:
            self.active -= 1
        self.requests.append({"path": request.path_qs})
        return web.Response(text="slow " + request.query.get("n", ""))

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"z" * (limits.HTTP_MAX_RESPONSE_BYTES + 10))

    async def binary(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes([0, 1, 2, 255]), content_type="application/octet-stream")

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    b = Backend()
    app = web.Application()
    app.router.add_route("*", "/echo", b.echo)
    app.router.add_get("/slow", b.slow)
    app.router.add_get("/big", b.big)
    app.router.add_get("/binary", b.binary)
    app.router.add_get("/loop", b.loop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    b.port = runner.addresses[0][1]
    yield b
    b.release.set()
    await runner.cleanup()


async def run_script(script: str, virtual: bool = False) -> list[str]:
    async with engine_harness(virtual=virtual) as h:
        session, lines = await h.run(script)
        assert not session.system_error, (session.failure, lines.system)
        return lines.script


async def test_get_post_headers_params_and_results(backend: Backend) -> None:
    base = f"http://127.0.0.1:{backend.port}"
    script = f"""
Net.httpRequest("{base}/echo", (r) => {{
  const body = JSON.parse(r.text);
  const reply = r.headers.filter((h) => h.key === "X-Reply")[0].value;
  Logger.write([r.code, body.method, body.query.a, body.ua, body.x, reply, typeof r.raw_headers].join(" "));
  const opts = new Net.HttpRequestOptions();
  opts.method = "POST";
  opts.postData = "a=1&b=2";
  opts.headers = ["User-Agent: VoxImplant", "X-Test: legacy"];
  Net.httpRequestAsync("{base}/echo", opts).then((p) => {{
    const b = JSON.parse(p.text);
    Logger.write([p.code, b.method, b.body, b.ua, b.x].join(" "));
    return Net.httpRequestAsync("{base}/binary", {{rawOutput: true}});
  }}).then((bin) => {{
    Logger.write(JSON.stringify(bin.data) + " " + (bin.text === undefined));
    VoxEngine.terminate();
  }});
}}, {{params: {{a: "x y"}}, headers: {{"X-Test": "object"}}}});
"""
    lines = await run_script(script)
    assert lines == [
        "200 GET x y VoxEngine/1.0 object yes string",
        "200 POST a=1&b=2 VoxImplant legacy",
        "[0,1,2,255] true",
    ]
    assert backend.requests[1]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"  # type: ignore[index]


async def test_failures_are_codes_never_exceptions(backend: Backend) -> None:
    base = f"http://127.0.0.1:{backend.port}"
    script = f"""
const urls = ["not a url", "ftp://127.0.0.1/x", "http://127.0.0.1:1/", "{base}/loop", "{base}/big"];
Promise.all(urls.map((u) => Net.httpRequestAsync(u))).then((results) => {{
  Logger.write(results.map((r) => r.code).join(","));
  return Net.httpRequestAsync("{base}/slow?wait=5", {{timeout: 0.3}});
}}).then((r) => {{ Logger.write("timeout " + r.code); VoxEngine.terminate(); }});
"""
    lines = await run_script(script)
    assert lines == ["-2,-2,-4,-5,-9", "timeout -7"]


async def test_three_active_and_thirty_five_total(backend: Backend) -> None:
    base = f"http://127.0.0.1:{backend.port}"
    script = f"""
let done = 0;
for (let i = 0; i < 35; i++) {{
  Net.httpRequest("{base}/slow?wait=0.05&n=" + i, (r) => {{ if (++done === 35) {{ Logger.write("all " + r.code);
    VoxEngine.terminate(); }} }});
}}
try {{ Net.httpRequest("{base}/slow", () => {{}}); }} catch (e) {{ Logger.write(e.message); }}
"""
    lines = await run_script(script)
    assert lines == ["Exceeded the HTTP connection count limit!", "all 200"]
    assert backend.max_active == limits.HTTP_ACTIVE
    assert len(backend.requests) == 35


async def test_termination_waits_for_running_requests_and_drops_queued_ones(backend: Backend) -> None:
    base = f"http://127.0.0.1:{backend.port}"
    script = f"""
for (let i = 0; i < 5; i++) {{
  Net.httpRequest("{base}/slow?wait=0.3&n=" + i, (r) => Logger.write("callback " + r.text));
}}
VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());
VoxEngine.addEventListener(AppEvents.Terminating, () => {{
  Logger.write("Terminating");
  Net.httpRequest("{base}/echo", (r) => Logger.write("last request " + r.code));
  Net.httpRequest("{base}/echo", (r) => Logger.write("second after Terminating " + r.code));
}});
VoxEngine.addEventListener(AppEvents.Terminated, () => Logger.write("Terminated"));
"""
    lines = await run_script(script)
    running = sorted(line for line in lines if line.startswith("callback"))
    assert running == ["callback slow 0", "callback slow 1", "callback slow 2"]  # queued 3 and 4 dropped
    assert lines[3:] == ["Terminating", "second after Terminating 0", "last request 200", "Terminated"]
    assert lines.index("Terminating") == 3


async def test_send_mail_to_a_local_smtp_server() -> None:
    received: list[tuple[str, list[str], bytes]] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))  # type: ignore[attr-defined]
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd checks its own port by connecting: it cannot take 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        script = f"""
Net.sendMail("127.0.0.1:{port}", "box@example.org", ["a@example.org"], "Missed call", "From +4930123",
  (r) => {{
    Logger.write("sent " + r.code);
    Net.sendMailAsync("127.0.0.1:1", "box@example.org", "b@example.org", "t", "b", {{port: 1}})
      .then((f) => {{ Logger.write("refused " + f.code + " " + (f.error !== undefined)); VoxEngine.terminate(); }});
  }}, {{cc: ["c@example.org"], bcc: ["d@example.org"]}});
"""
        lines = await run_script(script)
    finally:
        controller.stop()
    assert lines == ["sent 250", "refused -1 true"]
    sender, recipients, content = received[0]
    assert sender == "box@example.org"
    assert sorted(recipients) == ["a@example.org", "c@example.org", "d@example.org"]
    message = message_from_bytes(content)
    assert message["Subject"] == "Missed call"
    assert "d@example.org" not in content.decode()  # Bcc only in the envelope
    assert "From +4930123" in content.decode()


async def test_application_storage_put_get_keys_remove_and_expiry() -> None:
    script = """
(async () => {
  await ApplicationStorage.put("calls:1", "one", 0);
  await ApplicationStorage.put("calls:2", "two", 10);
  await ApplicationStorage.put("other", "x", 0);
  const got = await ApplicationStorage.get("calls:1");
  Logger.write(got.key + "=" + got.value + " " + (got.expireAt > Date.now() / 1000));
  Logger.write(JSON.stringify((await ApplicationStorage.keys("calls")).keys));
  Logger.write(String(await ApplicationStorage.get("missing")));
  try { await ApplicationStorage.put("k", "v".repeat(2001), 0); } catch (e) { Logger.write(e.name); }
  setTimeout(async () => {
    Logger.write("after 11 s: " + (await ApplicationStorage.get("calls:2")));
    const removed = await ApplicationStorage.remove("calls:1");
    Logger.write("removed " + removed.key + " " + removed.expireAt);
    Logger.write(JSON.stringify((await ApplicationStorage.keys()).keys));
    VoxEngine.terminate();
  }, 11000);
})();
"""
    async with engine_harness(virtual=True) as h:
        session, lines = await h.run(script)
        assert not session.system_error, session.failure
        assert lines.script == [
            "calls:1=one true",
            '["calls:1","calls:2"]',
            "null",
            "RangeError",
            "after 11 s: null",
            "removed calls:1 0",
            '["other"]',
        ]
        # Storage belongs to the application: a later session of it sees the same keys.
        _, later = await h.run('ApplicationStorage.get("other").then((v) => { Logger.write(v.value); '
                               'VoxEngine.terminate(); });')
        assert later.script == ["x"]


async def test_storage_results_arrive_in_order_of_the_store() -> None:
    script = """
Promise.all([1, 2, 3].map((i) => ApplicationStorage.put("k" + i, String(i), 0)))
  .then(() => ApplicationStorage.keys())
  .then((page) => { Logger.write(JSON.stringify(page)); VoxEngine.terminate(); });
"""
    lines = await run_script(script, virtual=True)
    assert json.loads(lines[0]) == {"keys": ["k1", "k2", "k3"]}
