import csv
import stat
from pathlib import Path

from dlworkshop.accounts import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    generate,
    hash_password,
    pbkdf2_hash,
    read_hashed,
    verify_password,
    write_sheets,
)


def test_hash_round_trip_and_wrong_password() -> None:
    hashed = hash_password("amber-birch-042")
    # The cheap, memory-hard hash of every login, its parameters stored with it.
    assert hashed.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")
    assert verify_password(hashed, "amber-birch-042")
    assert not verify_password(hashed, "amber-birch-043")
    assert not verify_password("garbage", "x")
    assert not verify_password("scrypt$x$8$1$c2FsdA==$ZGlnZXN0", "x")  # parameters not numbers
    assert not verify_password(hashed.replace("scrypt$", "md5$"), "amber-birch-042")


def test_hashes_written_before_still_verify() -> None:
    """A claims or accounts file written with PBKDF2 keeps working: each hash says its own scheme
    and parameters (other parameters than today's verify too)."""
    for old in (pbkdf2_hash("1234"), pbkdf2_hash("1234", iterations=1000)):
        assert old.startswith("pbkdf2_sha256$")
        assert verify_password(old, "1234")
        assert not verify_password(old, "1235")
    other = hash_password("1234", n=2**10, r=4, p=2)
    assert other.startswith("scrypt$1024$4$2$")
    assert verify_password(other, "1234")
    assert not verify_password(other, "4321")


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
