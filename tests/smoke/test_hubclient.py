"""The hub client against a fake hub that answers as JupyterHub 5 does (login form and xsrf
cookies, the REST API, the progress event stream, a learner's server behind the OAuth step).
The real hub is exercised by the e2e tests (smoke test, load test, surge)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from dlworkshop.errors import WorkshopError
from dlworkshop.hubclient import HubClient, HubError, HubSession, hub_url_of

URL = "http://hub.test:8000"
FORM = '<form><input type="hidden" name="_xsrf" value="form-token"/></form>'


class FakeHub:
    """Just enough of JupyterHub: users, a default server each, cookie or token identities."""

    def __init__(
        self,
        password: str = "code",
        seat: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        self.password = password
        self.secrets = secrets or {}  # shared-code: claimed names and their secrets
        self.seat = seat or {}  # a name typed at login -> the seat the hub hands out
        self.users: dict[str, dict] = {}  # type: ignore[type-arg]
        self.tokens: dict[str, str] = {}
        self.seen: list[str] = []  # "METHOD path" of every request
        self.sessions: list[dict[str, Any]] = []  # the notebook sessions asked for
        self.progress: list[dict] = [  # type: ignore[type-arg]
            {"progress": 10, "message": "you are number 1 in the queue"},
            {"progress": 100, "ready": True, "message": "Server ready"},
        ]
        self.stream_ends_early = False
        self.restarting = 0  # progress requests that find the hub down (a restart), before it answers
        self.polls_until_ready = 0
        self.polls_until_gone = 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.seen.append(f"{method} {path}")
        cookies = dict(
            part.strip().split("=", 1) for part in request.headers.get("cookie", "").split(";") if part
        )
        who = self.identity(request, cookies)
        if path == "/hub/login":
            return self.login(request)
        if path.startswith("/hub/api/"):
            if who is None:
                return httpx.Response(403, json={"status": 403, "message": "Action is not authorized"})
            return self.api(method, path.removeprefix("/hub/api"), who, request)
        if found := re.fullmatch(r"/user/([^/]+)/(.*)", path):
            return self.learner_server(found.group(1), found.group(2), method, who, cookies, request.content)
        return httpx.Response(404)

    def identity(self, request: httpx.Request, cookies: dict[str, str]) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("token ")
        if token:
            return self.tokens.get(token)
        user = cookies.get("jupyterhub-session")
        # The hub checks the xsrf token of cookie-authenticated API requests.
        if user and request.headers.get("x-xsrftoken") == cookies.get("_xsrf") == "hub-xsrf":
            return user
        return None

    def login(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, html=FORM, headers={"set-cookie": "_xsrf=hub-xsrf; Path=/hub/"})
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        if form.get("_xsrf") != "form-token" or form.get("password") != self.password:
            return httpx.Response(200, html=FORM + "Invalid username or password")
        claimed = self.secrets.get(form["username"])
        if claimed is not None and form.get("secret") != claimed:
            # JupyterHub 5 shows the authenticator's reason in the form, HTML-escaped.
            said = "The name ada is taken, and that is not its secret. If it is yours, type the secret you chose."
            return httpx.Response(403, html=f'{FORM}<p class="login_error">{html.escape(said)}</p>')
        name = self.seat.get(form["username"], form["username"])
        self.users.setdefault(name, {"name": name, "servers": {}})
        return httpx.Response(
            302, headers={"location": "/hub/spawn", "set-cookie": f"jupyterhub-session={name}; Path=/"}
        )

    def api(self, method: str, path: str, who: str, request: httpx.Request) -> httpx.Response:
        if path == "/user":
            return httpx.Response(200, json=self.users[who])
        found = re.fullmatch(r"/users/([^/]+)(/.*)?", path)
        if not found:
            return httpx.Response(404)
        name, rest = found.group(1), found.group(2) or ""
        if who not in (name, "service"):
            return httpx.Response(403, json={"status": 403, "message": f"{who} may not touch {name}"})
        user = self.users.get(name)
        if rest == "" and method == "POST":
            self.users[name] = {"name": name, "servers": {}}
            return httpx.Response(201, json=self.users[name])
        if user is None:
            return httpx.Response(404, json={"status": 404, "message": "Not Found"})
        if rest == "" and method == "GET":
            server = user["servers"].get("")
            if server is not None and not server["ready"]:
                if self.polls_until_ready <= 0:
                    server["ready"] = True
                self.polls_until_ready -= 1
            if server is not None and server.get("stopping"):
                if self.polls_until_gone <= 0:
                    user["servers"] = {}
                self.polls_until_gone -= 1
            return httpx.Response(200, json=user)
        if rest == "/tokens" and method == "POST":
            token = f"token-of-{name}"
            self.tokens[token] = name
            return httpx.Response(201, json={"token": token, "note": json.loads(request.content)["note"]})
        if rest == "/server" and method == "POST":
            if "" in user["servers"]:
                return httpx.Response(400, json={"status": 400, "message": f"{name} is already running"})
            user["servers"][""] = {"ready": False}
            return httpx.Response(202)
        if rest == "/server" and method == "DELETE":
            if "" in user["servers"]:
                user["servers"][""]["stopping"] = True
            return httpx.Response(202)
        if rest == "/server/progress":
            if self.restarting > 0:
                self.restarting -= 1
                if self.restarting % 2:
                    raise httpx.ConnectError("connection refused", request=request)
                return httpx.Response(503, text="the proxy has no hub to send this to")
            if "" not in user["servers"]:
                return httpx.Response(400, json={"status": 400, "message": f"{name} is not starting..."})
            return httpx.Response(
                200, content=self.event_stream(), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(404)

    async def event_stream(self) -> AsyncIterator[bytes]:
        for event in self.progress:
            yield b":keepalive\n\n"
            yield f"data: {json.dumps(event)}\n\n".encode()
        if not self.stream_ends_early:
            await asyncio.sleep(30)  # a hub that never says more

    def learner_server(
        self, name: str, rest: str, method: str, who: str | None, cookies: dict[str, str], body: bytes = b""
    ) -> httpx.Response:
        if rest == "lab":  # the hub's OAuth step hands the owner a login to their server
            if cookies.get("jupyterhub-session") != name:
                return httpx.Response(403, html="403: Forbidden")
            return httpx.Response(
                200, html="JupyterLab", headers={"set-cookie": f"_xsrf=srv-{name}; Path=/user/{name}/"}
            )
        if rest == "api/kernels" and method == "POST" and who == name:
            return httpx.Response(201, json={"id": "kernel-1", "name": "python3"})
        if rest == "api/sessions" and method == "POST" and who == name:
            self.sessions.append(json.loads(body))
            return httpx.Response(
                201, json={"id": "session-1", "kernel": {"id": "kernel-2", "name": "python3"}}
            )
        if rest.startswith("api/contents") and cookies.get("_xsrf") == f"srv-{name}":
            return httpx.Response(200, json={"type": "directory"})
        return httpx.Response(403, json={"message": "Forbidden"})


def session(hub: FakeHub, token: str | None = None) -> HubSession:
    return HubSession(URL, token=token, transport=httpx.MockTransport(hub))


def test_login_uses_the_forms_xsrf_and_does_not_follow_the_redirect() -> None:
    hub = FakeHub()

    async def scenario() -> str:
        async with session(hub) as learner:
            return await learner.login("ada", "code")

    assert asyncio.run(scenario()) == "/hub/spawn"
    # Following the redirect would start the server: a login alone must not.
    assert hub.seen == ["GET /hub/login", "POST /hub/login"]


def test_a_refused_login_is_one_line_naming_the_learner() -> None:
    learner = HubClient(URL, transport=httpx.MockTransport(FakeHub()))
    with pytest.raises(HubError, match=r"^login as ada refused \(wrong access code or password\?\)$"):
        learner.login("ada", "wrong")


def test_a_learners_secret_goes_with_the_form_and_a_refusal_says_the_hubs_reason() -> None:
    hub = FakeHub(secrets={"ada": "ada-1234"})
    with HubClient(URL, transport=httpx.MockTransport(hub)) as ada:
        assert ada.login("ada", "code", "ada-1234") == "/hub/spawn"
    eve = HubClient(URL, transport=httpx.MockTransport(hub))
    with pytest.raises(
        HubError, match=r"^login as ada refused: The name ada is taken, and that is not its secret\."
    ):
        eve.login("ada", "code", "guess")


def test_an_unreachable_hub_and_a_missing_form_are_hub_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    nowhere = HubClient(URL, transport=httpx.MockTransport(refuse))
    with pytest.raises(HubError, match=f"^hub unreachable at {URL}: ConnectError$"):
        nowhere.login("ada", "code")
    broken = HubClient(URL, transport=httpx.MockTransport(lambda r: httpx.Response(502)))
    with pytest.raises(HubError, match=r"no login form at .*/hub/login \(HTTP 502\)"):
        broken.login("ada", "code")
    assert issubclass(HubError, WorkshopError)  # the CLI shows it as one line


def test_a_certificate_the_client_does_not_trust_is_said_so_not_unreachable() -> None:
    def untrusted(request: httpx.Request) -> httpx.Response:
        refusal = ssl.SSLCertVerificationError(1, "certificate verify failed")
        refusal.verify_message = "self-signed certificate in certificate chain"
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]", request=request) from refusal

    hub = HubClient(URL, transport=httpx.MockTransport(untrusted))
    with pytest.raises(HubError) as refused:
        hub.login("ada", "code")
    assert str(refused.value).startswith(
        f"the hub's certificate at {URL} is not trusted: self-signed certificate in certificate chain"
    )
    assert refused.value.fix and "SSL_CERT_FILE" in refused.value.fix


def test_whoami_tells_the_seat_and_a_token_created_by_the_learner_replaces_the_cookie() -> None:
    hub = FakeHub(seat={"dana": "seat-01"})
    with HubClient(URL, transport=httpx.MockTransport(hub)) as learner:
        learner.login("dana", "code")
        assert learner.xsrf_for("/hub/api/user") == "hub-xsrf"
        name = learner.whoami()["name"]
        assert name == "seat-01"
        token = learner.create_token(name, "dlworkshop test")
        learner.use_token(token)
        learner.cookies.clear()
        assert learner.whoami()["name"] == "seat-01"


def test_a_service_creates_users_and_starts_their_servers_once() -> None:
    hub = FakeHub()
    hub.tokens["service-token"] = "service"
    hub.polls_until_ready = 1
    with HubClient.for_api(f"{URL}/hub/api/", "service-token", transport=httpx.MockTransport(hub)) as service:
        assert service.url == URL
        assert service.user("bo") is None
        assert service.server("bo", create_user=True) is None and "bo" in hub.users
        assert service.start("bo") is True
        assert service.start("bo") is False  # already on its way: the hub answers 400
        assert service.server("bo") == {"ready": False}


def test_an_error_status_is_one_line_with_the_hubs_message() -> None:
    hub = FakeHub()
    hub.users["cy"] = {"name": "cy", "servers": {}}
    with HubClient(URL, token="token-of-ada", transport=httpx.MockTransport(hub)) as ada:
        hub.tokens["token-of-ada"] = "ada"
        with pytest.raises(HubError) as refused:
            ada.start("cy")
    assert str(refused.value) == "POST /hub/api/users/cy/server: HTTP 403 ada may not touch cy"
    assert refused.value.status == 403


def test_the_progress_stream_is_followed_until_ready_or_failed() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    hub.users["ada"] = {"name": "ada", "servers": {}}
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        events = ada.spawn("ada", timeout=5)
        assert [e["progress"] for e in events] == [10, 100] and events[-1]["ready"]
        hub.progress = [{"progress": 100, "failed": True, "message": "Spawn failed: no room"}]
        assert ada.follow_progress("ada", timeout=5)[-1]["failed"]
        hub.users["ada"]["servers"] = {}
        with pytest.raises(HubError, match="the hub failed the start of ada's server: Spawn failed: no room"):
            ada.spawn("ada", timeout=5)


def test_a_start_the_hub_has_not_for_two_minutes_or_one_that_stalls_is_a_hub_error() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    hub.users["ada"] = {"name": "ada", "servers": {}}
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        with pytest.raises(HubError, match=r"no start of ada's server in progress \(HTTP 400\) for 1 s"):
            ada.follow_progress("ada", timeout=30, give_up_after=1)
        assert hub.seen.count("GET /hub/api/users/ada/server/progress") == 2  # asked again after 1 s
        ada.start("ada")
        hub.progress = [{"progress": 50, "message": "pulling"}]
        with pytest.raises(HubError, match=r"server of ada not ready after 0 s \(last: pulling\)"):
            ada.follow_progress("ada", timeout=0.3)


def test_a_stream_that_breaks_is_opened_again_as_the_spawn_page_does_and_no_start_is_asked_again() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    hub.users["ada"] = {"name": "ada", "servers": {"": {"ready": False}}}
    hub.progress = [{"progress": 10, "message": "you are number 3 in the queue"}]
    hub.stream_ends_early = True  # the hub goes down in the middle of the stream
    streams = 0

    def restarting_hub(request: httpx.Request) -> httpx.Response:
        nonlocal streams
        if request.url.path.endswith("/progress"):
            streams += 1
            if streams == 2:  # then: connection refused, the proxy's 503 while the hub starts
                hub.restarting = 2
            if streams == 4:  # the hub is back, the start resumed
                hub.stream_ends_early = False
                hub.progress = [{"progress": 100, "ready": True, "message": "Server ready"}]
        return hub(request)

    with HubClient(URL, token="t", transport=httpx.MockTransport(restarting_hub)) as ada:
        events = ada.follow_progress("ada", timeout=60)
    assert [e["progress"] for e in events] == [10, 100] and events[-1]["ready"]
    assert hub.seen.count("GET /hub/api/users/ada/server/progress") == 4
    assert "POST /hub/api/users/ada/server" not in hub.seen


def test_polling_waits_until_ready_and_gives_up_when_the_hub_has_no_server() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    hub.users["ada"] = {"name": "ada", "servers": {}}
    hub.polls_until_ready = 2
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        ada.start("ada")
        ada.wait_ready("ada", timeout=10, every=0.01)
        assert hub.seen.count("GET /hub/api/users/ada") == 3
        hub.users["ada"]["servers"] = {}
        with pytest.raises(HubError, match="server of ada not ready after"):
            ada.wait_ready("ada", timeout=10, every=0.01, grace=0.05)


def test_stop_waits_until_the_hub_says_the_server_is_gone() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    hub.users["ada"] = {"name": "ada", "servers": {"": {"ready": True}}}
    hub.polls_until_gone = 2
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        ada.stop("ada", wait=10)
        assert hub.users["ada"]["servers"] == {}
        assert hub.seen.count("GET /hub/api/users/ada") == 3
        hub.users["ada"]["servers"] = {"": {"ready": True}}
        ada.stop("ada", wait=None)
        assert hub.seen[-1] == "DELETE /hub/api/users/ada/server"


def test_the_server_api_is_called_as_jupyterlab_does_with_that_servers_xsrf() -> None:
    hub = FakeHub()
    with (
        HubClient(URL, transport=httpx.MockTransport(hub)) as ada,
        HubClient(URL, transport=httpx.MockTransport(hub)) as eve,
    ):
        ada.login("ada", "code")
        assert ada.server_api("ada", "GET", "/api/contents").json() == {"type": "directory"}
        assert ada.xsrf_for("/user/ada/api/contents") == "srv-ada"
        assert ada.xsrf_for("/hub/api/user") == "hub-xsrf"  # each page reads its own cookie
        eve.login("eve", "code")
        assert eve.get("/user/ada/lab").status_code == 403
        assert eve.server_api("ada", "GET", "/api/contents").status_code == 403


def test_a_kernel_is_one_request_with_the_learners_token() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        assert ada.start_kernel("ada") == "kernel-1"
    assert hub.seen == ["POST /user/ada/api/kernels"]


def test_a_notebook_session_is_opened_as_jupyterlab_opens_a_notebook() -> None:
    hub = FakeHub()
    hub.tokens["t"] = "ada"
    with HubClient(URL, token="t", transport=httpx.MockTransport(hub)) as ada:
        assert ada.start_session("ada", "lessons/01-introduction.ipynb") == "kernel-2"
    assert hub.seen == ["POST /user/ada/api/sessions"]
    assert hub.sessions == [
        {
            "path": "lessons/01-introduction.ipynb",
            "name": "01-introduction.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        }
    ]


def test_the_sync_client_may_be_called_from_many_threads_at_once() -> None:
    hub = FakeHub()
    hub.tokens["service-token"] = "service"
    names = [f"seat-{index:02d}" for index in range(1, 17)]
    with HubClient(URL, token="service-token", transport=httpx.MockTransport(hub)) as service:
        for name in names:
            service.user(name, create=True)
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(service.start, names))
    assert all("" in hub.users[name]["servers"] for name in names)


def test_the_hub_url_comes_from_a_services_api_url() -> None:
    assert hub_url_of("http://127.0.0.1:8081/hub/api") == "http://127.0.0.1:8081"
    assert hub_url_of("https://host/prefix/hub/api/") == "https://host/prefix"
