"""One client for a JupyterHub: what a learner's browser, the smoke test, the load test, pre-warm
and the tests do against a hub, written once.

A session is one identity: a browser's cookies after `login` (requests carry back the `_xsrf`
cookie of the page they belong to, as the hub's and JupyterLab's pages do), an API token (a
service's or a user's), or both (a learner who logged in and created a token for themselves).

`HubSession` is asynchronous, for callers that run many learners at once (the load test);
`HubClient` is the same session for synchronous callers, its calls run on one background event
loop shared by every `HubClient` of the process (safe to call from several threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx

from dlworkshop.errors import WorkshopError

API = "/hub/api"
_FORM_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
# Why the hub refused a login, as its form shows it.
_LOGIN_ERROR = re.compile(r'<p class="login_error">(.*?)</p>', re.DOTALL)
_T = TypeVar("_T")
Json = dict[str, Any]


def _certificate_refusal(exc: BaseException) -> str | None:
    """The TLS verification failure behind a connection error (its reason), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


class HubError(WorkshopError):
    """The hub, or a learner's server behind it, refused, failed or did not answer. The message
    is one line a caller can show as it is; `status` is the HTTP status where there was one."""

    def __init__(self, message: str, status: int | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix)
        self.status = status


def hub_url_of(api_url: str) -> str:
    """The hub's URL from its API's (a service's JUPYTERHUB_API_URL ends in /hub/api)."""
    url = api_url.rstrip("/")
    return url[: -len(API)] if url.endswith(API) else url


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _refusal(response: httpx.Response) -> HubError:
    """An error status as one line: the request, the status and the hub's own message."""
    try:
        said = response.json().get("message") or ""
    except (ValueError, AttributeError):
        said = response.reason_phrase
    request = response.request
    return HubError(
        f"{request.method} {request.url.path}: HTTP {response.status_code} {_one_line(str(said))}".rstrip(),
        response.status_code,
    )


class HubSession:
    """A session with the hub at `url` (its public URL, e.g. http://127.0.0.1:8000)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout, verify=verify, transport=transport)
        if token:
            self.use_token(token)

    def use_token(self, token: str) -> None:
        """Authenticate every later request with this API token (a service's or a user's)."""
        self.http.headers["Authorization"] = f"token {token}"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> HubSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- requests as the hub's and JupyterLab's pages make them ---

    def xsrf_for(self, path: str) -> str | None:
        """The `_xsrf` cookie a page at `path` reads: the hub's for /hub/..., a learner's server's
        for /user/<name>/... (the cookie with the longest path that covers it)."""
        target = httpx.URL(path)
        full = target.path if target.is_absolute_url else httpx.URL(self.url + path).path
        covering = [c for c in self.http.cookies.jar if c.name == "_xsrf" and full.startswith(c.path)]
        return max(covering, key=lambda c: len(c.path)).value if covering else None

    def _headers(self, path: str, headers: dict[str, str] | None) -> dict[str, str]:
        xsrf = self.xsrf_for(path)
        return {**({"X-XSRFToken": xsrf} if xsrf else {}), **(headers or {})}

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """httpx's errors as one-line HubErrors."""
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            untrusted = _certificate_refusal(exc)
            if untrusted:
                # httpx reports a refused certificate as a ConnectError: said as what it is.
                raise HubError(
                    f"the hub's certificate at {self.url} is not trusted: {untrusted}",
                    fix="trust the CA that signed it (SSL_CERT_FILE=/path/to/ca.pem), or use the hub's own name in the URL",
                ) from None
            raise HubError(f"hub unreachable at {self.url}: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise HubError(f"the hub at {self.url}: {type(exc).__name__}: {_one_line(str(exc))}") from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        check: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request (path below the hub's URL), its page's `_xsrf` cookie sent back as the
        X-XSRFToken header. With `check`, an error status raises HubError; redirects are followed
        only where `follow_redirects=True` is passed."""
        with self._answering():
            response = await self.http.request(method, path, headers=self._headers(path, headers), **kwargs)
        if check and response.status_code >= 400:
            raise _refusal(response)
        return response

    async def get(self, path: str) -> httpx.Response:
        """GET a page as a browser does: redirects followed, the response whatever its status."""
        return await self.request("GET", path, check=False, follow_redirects=True)

    # --- login and identity ---

    async def login(self, name: str, password: str, secret: str | None = None) -> str:
        """Log in through the hub's login form as a browser does; returns where the hub sends the
        browser next. The redirect is not followed, so a login alone starts no server.
        `password` is the workshop code in shared-code mode, where `secret` is the learner's own
        (the first login under a name claims it with that secret)."""
        page = await self.request("GET", "/hub/login", check=False)
        found = _FORM_XSRF.search(page.text)
        if page.status_code != 200 or not found:
            raise HubError(
                f"no login form at {self.url}/hub/login (HTTP {page.status_code})", page.status_code
            )
        form = {"username": name, "password": password, "_xsrf": found.group(1)}
        if secret is not None:
            form["secret"] = secret
        answer = await self.request("POST", "/hub/login", data=form, check=False)
        location = answer.headers.get("location", "")
        # A refused login shows the form again (with why, where the hub says), or sends the
        # browser back to it.
        if answer.status_code != 302 or "/hub/login" in location:
            said = _LOGIN_ERROR.search(answer.text)
            why = (
                f": {_one_line(html.unescape(said.group(1)))}"
                if said
                else " (wrong access code or password?)"
            )
            raise HubError(f"login as {name} refused{why}", answer.status_code)
        return location

    async def whoami(self) -> Json:
        """The hub's model of this session's user. After a login its name may differ from the
        name typed: in shared-code mode the hub hands out a pre-warmed seat."""
        return (await self.request("GET", f"{API}/user")).json()

    async def create_token(self, user: str, note: str, expires_in: int = 3600) -> str:
        """A new API token of `user` (a logged-in learner may create their own)."""
        created = await self.request(
            "POST", f"{API}/users/{user}/tokens", json={"note": note, "expires_in": expires_in}
        )
        return created.json()["token"]

    # --- users and their servers ---

    async def user(self, name: str, create: bool = False) -> Json | None:
        """The hub's model of a user; None when there is none, unless `create` makes one."""
        found = await self.request("GET", f"{API}/users/{name}", check=False)
        if found.status_code == 404:
            if not create:
                return None
            return (await self.request("POST", f"{API}/users/{name}")).json()
        if found.status_code >= 400:
            raise _refusal(found)
        return found.json()

    async def server(self, name: str, create_user: bool = False) -> Json | None:
        """The user's default server as the hub reports it (starting or ready); None when it has
        none. `create_user` creates a user the hub does not know yet (as pre-warm does)."""
        user = await self.user(name, create=create_user)
        return (user or {}).get("servers", {}).get("")

    async def start(self, name: str) -> bool:
        """Ask for the user's default server; False when it is already running or on its way
        (the hub answers 400 then). A dlworkshop hub answers at once (its slow-spawn wait is off,
        hub/config.py); JupyterHub's default waits up to 10 s for the start first."""
        answer = await self.request("POST", f"{API}/users/{name}/server", check=False)
        if answer.status_code == 400:
            return False
        if answer.status_code >= 400:
            raise _refusal(answer)
        return True

    async def follow_progress(self, name: str, timeout: float, give_up_after: float = 120) -> list[Json]:
        """The start's progress events, read from the hub's event stream as the spawn page reads
        them (no polling), until one says ready or failed: the last event says which.

        As the spawn page does (hub/templates/spawn_pending.html), a stream that breaks (the hub
        restarted) is opened again, after 1, 2, 4, 5, 5... s, and nothing else is asked of the hub:
        never a new start. Only when the hub itself answers, for `give_up_after` s, that no start
        of the server is in progress, is the start lost."""
        path = f"{API}/users/{name}/server/progress"
        events: list[Json] = []

        async def one_stream() -> int | None:
            """Read one stream; the hub's status when it refused it, None when it broke."""
            headers = self._headers(path, {"Accept": "text/event-stream"})
            # No read timeout: the whole wait is bounded below, and the hub sends keepalives.
            async with self.http.stream("GET", path, headers=headers, timeout=None) as stream:
                if stream.status_code != 200:
                    return stream.status_code
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
                        if events[-1].get("ready") or events[-1].get("failed"):
                            return 200
            return None

        async def until_done() -> list[Json]:
            delay, refused_since = 1.0, None
            while True:
                try:
                    status = await one_stream()
                except httpx.HTTPError:  # refused, reset, cut off: the hub is (re)starting
                    status = None
                if status == 200:
                    return events
                if status is not None and status < 500:  # the hub answers: no start in progress
                    refused_since = refused_since or time.monotonic()
                    if time.monotonic() - refused_since > give_up_after:
                        raise HubError(
                            f"no start of {name}'s server in progress (HTTP {status}) for "
                            f"{give_up_after:.0f} s: the hub dropped it",
                            status,
                        )
                else:
                    refused_since = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

        try:
            return await asyncio.wait_for(until_done(), timeout)
        except asyncio.TimeoutError:
            last = f" (last: {_one_line(str(events[-1].get('message', '')))})" if events else ""
            raise HubError(f"server of {name} not ready after {timeout:.0f} s{last}") from None

    async def spawn(self, name: str, timeout: float) -> list[Json]:
        """Start the server and follow its progress until it is ready, as a browser's spawn page
        does; HubError when the hub fails the start."""
        await self.start(name)
        events = await self.follow_progress(name, timeout)
        if events[-1].get("failed"):
            said = _one_line(str(events[-1].get("message", "")))
            raise HubError(f"the hub failed the start of {name}'s server: {said}")
        return events

    async def wait_ready(self, name: str, timeout: float, every: float = 1.0, grace: float = 10.0) -> None:
        """Poll the hub until the user's server is ready, for callers that do not follow the event
        stream. HubError after `timeout`, or when the hub still has no server `grace` s in (the start
        was refused or failed)."""
        began = time.monotonic()
        while True:
            server = await self.server(name)
            if server and server.get("ready"):
                return
            waited = time.monotonic() - began
            if waited > timeout or (server is None and waited > grace):
                raise HubError(f"server of {name} not ready after {waited:.0f} s")
            await asyncio.sleep(every)

    async def stop(self, name: str, wait: float | None = 120) -> None:
        """Stop the user's default server and, unless `wait` is None, wait (bounded) until the
        hub says it is gone: a stop may be pending after the hub answered."""
        await self.request("DELETE", f"{API}/users/{name}/server")
        if wait is None:
            return
        deadline = time.monotonic() + wait
        while True:
            user = await self.user(name)
            if not user or not user.get("servers"):
                return
            if time.monotonic() > deadline:
                raise HubError(f"server of {name} still there {wait:.0f} s after stopping it")
            await asyncio.sleep(0.5)

    # --- a learner's Jupyter server, through the hub's proxy ---

    async def server_api(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the user's Jupyter server API as JupyterLab makes it: this session's cookies
        and that server's `_xsrf` cookie as X-XSRFToken (its pages set it: the first call opens
        JupyterLab, through the hub's OAuth step). The response whatever its status."""
        base = f"/user/{name}"
        if self.xsrf_for(f"{base}/api") is None:
            await self.get(f"{base}/lab")
        return await self.request(method, base + path, check=False, **kwargs)

    async def start_kernel(self, name: str, kernel: str = "python3") -> str:
        """A new kernel in the user's server (one request, as JupyterLab's launcher makes); its id."""
        started = await self.request("POST", f"/user/{name}/api/kernels", json={"name": kernel})
        return started.json()["id"]

    async def start_session(self, name: str, path: str, kernel: str = "python3") -> str:
        """A notebook's session in the user's server, as JupyterLab opens a notebook (its kernel
        started in the notebook's folder, the session named after it); the kernel's id."""
        started = await self.request(
            "POST",
            f"/user/{name}/api/sessions",
            json={
                "path": path,
                "name": path.rsplit("/", 1)[-1],
                "type": "notebook",
                "kernel": {"name": kernel},
            },
        )
        return started.json()["kernel"]["id"]


# --- the same session for synchronous callers ---

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on the background loop and wait for its result. A daemon thread, so a
    client nobody closed never holds up the interpreter's exit."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="dlworkshop-hubclient", daemon=True).start()
    future = asyncio.run_coroutine_threadsafe(coroutine, _loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()  # e.g. Ctrl-C in the caller: do not leave the request running
        raise


class HubClient:
    """`HubSession` for synchronous callers: the same methods, each waiting for its answer."""

    def __init__(self, url: str, token: str | None = None, **options: Any) -> None:
        """`options` as HubSession's (timeout, verify, transport)."""
        self.session = HubSession(url, token, **options)
        self.url = self.session.url

    @classmethod
    def for_api(cls, api_url: str, token: str, **options: Any) -> HubClient:
        """A service's client, from JUPYTERHUB_API_URL and its token."""
        return cls(hub_url_of(api_url), token, **options)

    def close(self) -> None:
        _run(self.session.aclose())

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def cookies(self) -> httpx.Cookies:
        return self.session.http.cookies

    def use_token(self, token: str) -> None:
        self.session.use_token(token)

    def xsrf_for(self, path: str) -> str | None:
        return self.session.xsrf_for(path)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return _run(self.session.request(method, path, **kwargs))

    def get(self, path: str) -> httpx.Response:
        return _run(self.session.get(path))

    def login(self, name: str, password: str, secret: str | None = None) -> str:
        return _run(self.session.login(name, password, secret))

    def whoami(self) -> Json:
        return _run(self.session.whoami())

    def create_token(self, user: str, note: str, expires_in: int = 3600) -> str:
        return _run(self.session.create_token(user, note, expires_in))

    def user(self, name: str, create: bool = False) -> Json | None:
        return _run(self.session.user(name, create))

    def server(self, name: str, create_user: bool = False) -> Json | None:
        return _run(self.session.server(name, create_user))

    def start(self, name: str) -> bool:
        return _run(self.session.start(name))

    def follow_progress(self, name: str, timeout: float, give_up_after: float = 120) -> list[Json]:
        return _run(self.session.follow_progress(name, timeout, give_up_after))

    def spawn(self, name: str, timeout: float) -> list[Json]:
        return _run(self.session.spawn(name, timeout))

    def wait_ready(self, name: str, timeout: float, every: float = 1.0, grace: float = 10.0) -> None:
        _run(self.session.wait_ready(name, timeout, every, grace))

    def stop(self, name: str, wait: float | None = 120) -> None:
        _run(self.session.stop(name, wait))

    def server_api(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return _run(self.session.server_api(name, method, path, **kwargs))

    def start_kernel(self, name: str, kernel: str = "python3") -> str:
        return _run(self.session.start_kernel(name, kernel))

    def start_session(self, name: str, path: str, kernel: str = "python3") -> str:
        return _run(self.session.start_session(name, path, kernel))
