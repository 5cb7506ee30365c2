"""What the hub keeps on its volume: the database, its secrets, the seat book and the claimed names.

Read (and, the first time, created) once before the configuration is applied, so that the
`apply_*` functions only set keys. Secrets are files of mode 0600: a re-created hub container
keeps its learners' sessions and its proxy.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dlworkshop import contract


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


@dataclass(frozen=True)
class HubState:
    data: Path
    proxy_token: str | None  # None where a platform runs the hub and gives the proxy its token
    prewarm_token: str
    # Encrypts JupyterHub's auth_state (64 hex digits: 32 bytes). Empty: auth_state stays off.
    auth_state_key: str = ""
    # The room service's token (`dlworkshop status` inside the hub container). Empty: no such service.
    room_token: str = ""

    @classmethod
    def load(cls, data: Path | None = None) -> HubState:
        data = data or Path(contract.hub_data())
        return cls(
            data=data,
            proxy_token=read_or_create_secret(data / contract.PROXY_TOKEN_FILE),
            prewarm_token=read_or_create_secret(data / contract.PREWARM_TOKEN_FILE),
            auth_state_key=read_or_create_secret(data / contract.AUTH_STATE_KEY_FILE),
            room_token=read_or_create_secret(data / contract.ROOM_TOKEN_FILE),
        )

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data / contract.DATABASE_FILE}"

    @property
    def cookie_secret_file(self) -> Path:
        return self.data / contract.COOKIE_SECRET_FILE

    @property
    def seats_file(self) -> Path:
        return self.data / contract.SEATS_FILE

    @property
    def spares_file(self) -> Path:
        return self.data / contract.SPARES_FILE

    @property
    def claims_file(self) -> Path:
        return self.data / contract.CLAIMS_FILE

    @property
    def stops_file(self) -> Path:
        return self.data / contract.STOPS_FILE

    @property
    def closed_file(self) -> Path:
        return self.data / contract.CLOSED_FILE

    @property
    def cluster_accounts_file(self) -> Path:
        return self.data / contract.CLUSTER_ACCOUNTS_FILE
