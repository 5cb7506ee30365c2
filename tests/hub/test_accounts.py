import csv
import stat
from pathlib import Path

from dlworkshop.accounts import generate, hash_password, read_hashed, verify_password, write_sheets


def test_hash_round_trip_and_wrong_password() -> None:
    hashed = hash_password("amber-birch-042")
    assert hashed.startswith("pbkdf2_sha256$")
    assert verify_password(hashed, "amber-birch-042")
    assert not verify_password(hashed, "amber-birch-043")
    assert not verify_password("garbage", "x")


def test_sheets_plain_private_hashed_for_the_hub(tmp_path: Path) -> None:
    accounts = generate(12, prefix="seat")
    assert [a.username for a in accounts][:2] == ["seat01", "seat02"]
    assert len({a.password for a in accounts}) == 12
    files = write_sheets(accounts, tmp_path, "DL workshop", "https://hub.example.org")
    assert stat.S_IMODE(files["plain"].stat().st_mode) == 0o600
    hashes = read_hashed(files["hashed"])
    assert all(verify_password(hashes[a.username], a.password) for a in accounts)
    with files["hashed"].open() as handle:
        assert all(a.password not in handle.read() for a in accounts)
    assert "seat12" in files["slips"].read_text()
    with files["plain"].open() as handle:
        assert next(csv.reader(handle)) == ["username", "password"]
