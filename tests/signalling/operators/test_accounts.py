from pathlib import Path

import pytest
from pydantic import SecretStr

from signalling.config import OperatorAccount
from signalling.operators.accounts import AccountBook, check_password


def test_accounts_are_hashed_disabled_and_never_reused(tmp_path: Path) -> None:
    book = AccountBook(tmp_path / "accounts.json")
    book.add("dave", "correct horse", ["investigator"])
    stored = (tmp_path / "accounts.json").read_text()
    assert "correct horse" not in stored and "$argon2" in stored
    dave = book.get("dave")
    assert dave is not None and dave.roles == ("investigator",)
    assert check_password(dave, "correct horse") and not check_password(dave, "wrong")
    with pytest.raises(ValueError, match="exists"):
        book.add("dave", "x", ["admin"])
    other_process = AccountBook(tmp_path / "accounts.json")  # e.g. the CLI beside the server
    other_process.set_disabled("dave", True)
    disabled = book.get("dave")
    assert disabled is not None and disabled.disabled
    assert not check_password(disabled, "correct horse")
    assert not check_password(None, "anything")


def test_configured_accounts_are_hashed_in_memory(tmp_path: Path) -> None:
    book = AccountBook(
        tmp_path / "accounts.json",
        [OperatorAccount(username="erin", password=SecretStr("pw"), roles=["supervisor"])],
    )
    erin = book.get("erin")
    assert erin is not None and erin.password_hash.startswith("$argon2")
    assert not (tmp_path / "accounts.json").exists()
    assert [a.username for a in book.all()] == ["erin"]
