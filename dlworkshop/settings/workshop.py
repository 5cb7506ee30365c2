"""Who and when: the workshop's name and times, the learners, and how they log in."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from dlworkshop.settings.base import ConfigPath, StrictModel


class WorkshopInfo(StrictModel):
    export_notice: str | None = Field(
        default=None,
        description="What a learner who tries to log in after the workshop ended is told: where to "
        "get the work `dlworkshop export` saved (a URL or a sentence).",
    )
    name: str = "Introduction to deep learning"
    start: datetime | None = Field(default=None, description="When learners arrive.")
    end: datetime | None = Field(
        default=None, description="When the workshop ends (the end of a Slurm reservation)."
    )

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> WorkshopInfo:
        if self.start and self.end and (self.end.tzinfo is None) != (self.start.tzinfo is None):
            raise ValueError("give start and end both with a UTC offset, or both without")
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) is not after start ({self.start.isoformat()})")
        return self


class Learners(StrictModel):
    count: int | None = Field(default=None, ge=1, le=1000)
    names: list[str] | None = None
    expected_concurrent: int | None = Field(
        default=None, ge=1, description="Learners expected at once; allows a quota overcommit."
    )
    smoke_test_user: str = "smoke-test"

    @model_validator(mode="after")
    def _count_or_names(self) -> Learners:
        if self.count is None and not self.names:
            raise ValueError("give either a learner count or a list of names")
        if self.count is not None and self.names and self.count != len(self.names):
            raise ValueError(f"count {self.count} disagrees with the {len(self.names)} names listed")
        return self

    @property
    def total(self) -> int:
        return self.count if self.count is not None else len(self.names or [])

    @property
    def concurrent(self) -> int:
        return self.expected_concurrent or self.total


class GitHubAuth(StrictModel):
    client_id: str
    client_secret: SecretStr
    callback_url: str | None = None
    allowed_organizations: list[str] = Field(default=[])


class Auth(StrictModel):
    mode: Literal["shared-code", "accounts", "github"] = "shared-code"
    access_code: SecretStr | None = Field(
        default=None, description="The code learners type in `shared-code` mode."
    )
    accounts_file: ConfigPath | None = Field(
        default=None, description="CSV of usernames and password hashes from `dlworkshop accounts generate`."
    )
    github: GitHubAuth | None = None
    admins: list[str] = Field(default=[])
    helpers: list[str] = Field(
        default=[],
        description="Helpers: they see the room (`dlworkshop status`) and can open any learner's "
        "JupyterLab (every such access is logged), but are not admins.",
    )
    login_attempts_per_minute: int = Field(
        default=5,
        ge=1,
        description="Failed logins under one name from one address per minute before each further "
        "failure under that name is answered after a growing delay (never a lockout).",
    )
    login_attempts_per_minute_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed logins from one address (a classroom behind one NAT) per minute before "
        "every further failure from it is delayed; correct logins are never delayed by others' failures.",
    )

    @model_validator(mode="after")
    def _mode_needs_its_fields(self) -> Auth:
        if self.mode == "shared-code" and not (self.access_code and self.access_code.get_secret_value()):
            raise ValueError("mode shared-code needs auth.access_code (the code learners type)")
        if self.mode == "github" and self.github is None:
            raise ValueError("mode github needs auth.github with client_id and client_secret")
        if self.mode == "accounts" and self.accounts_file is None:
            raise ValueError(
                "mode accounts needs auth.accounts_file, the hashed CSV `dlworkshop accounts generate N` writes"
            )
        if self.login_attempts_per_minute_per_address < self.login_attempts_per_minute:
            raise ValueError(
                f"login_attempts_per_minute_per_address ({self.login_attempts_per_minute_per_address}) "
                f"must be at least login_attempts_per_minute ({self.login_attempts_per_minute}): "
                "a room shares one address"
            )
        return self
