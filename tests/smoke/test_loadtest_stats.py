from pathlib import Path

from dlworkshop.clients.loadtest import LearnerRun, credentials, percentile, summary, write_report


def runs() -> list[LearnerRun]:
    done = [
        LearnerRun(f"l{i}", i, {"login": 0.1, "spawn": 2.0 + i, "kernel": 0.2, "first_cell": 0.5})
        for i in range(5)
    ]
    return [*done, LearnerRun("late", 5.0, {"login": 0.1}, error="spawn: TimeoutError", failed_step="spawn")]


def test_percentiles_and_summary_count_only_finished_steps() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    rows = summary(runs())
    assert rows["login"]["count"] == 6 and rows["spawn"]["count"] == 5
    assert rows["login_to_first_cell"]["max"] == 0.1 + 6.0 + 0.2 + 0.5


def test_report_has_every_learner_and_the_plot(tmp_path: Path) -> None:
    files = write_report(runs(), tmp_path, "http://hub", 10)
    assert files["png"].read_bytes().startswith(b"\x89PNG")
    assert '"ran_code": 5' in files["json"].read_text()


def test_credentials_for_shared_code_and_accounts(tmp_path: Path) -> None:
    from dlworkshop.clients.instructor import instructor_key, secret_for

    key = instructor_key(tmp_path / "instructor-key")
    logins = credentials(2, "lt-", "code", None, lambda name: secret_for(name, key))
    assert [(login.name, login.password) for login in logins] == [("lt-01", "code"), ("lt-02", "code")]
    # shared-code: each simulated learner claims its name with its own secret, the same every run.
    assert logins[0].secret != logins[1].secret
    assert logins[0].secret == secret_for("lt-01", instructor_key(tmp_path / "instructor-key"))
    assert (tmp_path / "instructor-key").stat().st_mode & 0o777 == 0o600
    sheet = tmp_path / "plain.csv"
    sheet.write_text("username,password\nseat01,a-b-001\nseat02,c-d-002\n")
    assert credentials(1, "x", None, sheet) == [("seat01", "a-b-001", None)]


def test_too_few_accounts_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from dlworkshop.errors import WorkshopError

    sheet = tmp_path / "plain.csv"
    sheet.write_text("username,password\nseat01,a-b-001\n")
    with pytest.raises(WorkshopError, match="fewer than 3 learners"):
        credentials(3, "x", None, sheet)
