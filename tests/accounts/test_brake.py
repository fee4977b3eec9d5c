"""The sign-in brake: per (account, address), per address and per account, on real SQLite and
argon2 where a password is checked; no spraying between one's own sign-ins, no lock-outs."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.accounts import limits
from appliance.accounts.limits import SignInBrake
from appliance.accounts.service import Accounts
from appliance.errors import RateLimited
from appliance.store.db import Database
from appliance.store.users import UserStore

PASSWORD = "correct horse battery"  # noqa: S105 - a test account


def frozen() -> float:
    return 1000.0  # a clock that stands still: the brake's waits never run out in a test


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    # two free failures per account, eight per address
    brake = SignInBrake(free=2, clock=frozen)
    return Accounts(UserStore(Database(tmp_path / "appliance.db")), brake)


def test_failures_double_the_wait_and_a_success_clears_its_pair() -> None:
    now = [1000.0]
    brake = SignInBrake(free=2, window_s=60, longest_s=8, clock=lambda: now[0])
    brake.admit("ann", "10.0.0.1")
    brake.admit("ann", "10.0.0.1")  # one failure: the next try is free
    with pytest.raises(RateLimited) as braked:  # two: the next one waits a second
        brake.admit("ann", "10.0.0.1")
    assert braked.value.retry_after == 2
    brake.admit("bob", "10.0.0.2")  # another account from another address: not held up
    now[0] += 1.5
    brake.admit("ann", "10.0.0.1")
    with pytest.raises(RateLimited) as longer:  # the next wait is twice as long
        brake.admit("ANN", "10.0.0.1")  # (names ignore case)
    assert longer.value.retry_after == 3
    now[0] += 2.5
    counted = brake.admit("ann", "10.0.0.1")
    brake.succeeded("ann", "10.0.0.1", counted)  # that try was right: the pair starts afresh
    brake.admit("ann", "10.0.0.1")
    with pytest.raises(RateLimited):  # while the account stays braked for new addresses
        brake.admit("ann", "10.0.0.9")
    now[0] += 61  # out of the window: forgotten
    brake.admit("ann", "10.0.0.9")


def test_spraying_names_between_ones_own_sign_ins_is_braked(accounts: Accounts) -> None:
    accounts.add("mallory", PASSWORD)
    for n in range(8):  # the address's free failures, each after a right sign-in
        assert accounts.sign_in("mallory", PASSWORD, "10.0.0.66") is not None
        assert accounts.sign_in(f"victim{n}", "Summer2026!", "10.0.0.66") is None
    with pytest.raises(RateLimited):
        accounts.sign_in("victim8", "Summer2026!", "10.0.0.66")
    assert accounts.sign_in("mallory", PASSWORD, "10.0.0.7") is not None  # elsewhere: free


def test_failing_on_the_admins_name_does_not_lock_the_admin_out(accounts: Accounts) -> None:
    accounts.add("boss", PASSWORD, "admin")
    assert accounts.sign_in("boss", PASSWORD, "10.0.0.2") is not None  # the admin's desk
    for _ in range(2):
        assert accounts.sign_in("boss", "guess number 1", "10.0.0.66") is None
    with pytest.raises(RateLimited):  # the attacker's address waits …
        accounts.sign_in("boss", "guess number 2", "10.0.0.66")
    with pytest.raises(RateLimited):  # … and so does any address new to the account
        accounts.sign_in("boss", PASSWORD, "10.0.0.3")
    assert accounts.sign_in("boss", PASSWORD, "10.0.0.2") is not None  # the known desk: in
    assert accounts.sign_in("boss", "a wrong password", "10.0.0.2") is None
    assert accounts.sign_in("boss", "a wrong password", "10.0.0.2") is None
    with pytest.raises(RateLimited):  # guessing from the known desk is braked all the same
        accounts.sign_in("boss", PASSWORD, "10.0.0.2")


def test_unknown_and_disabled_accounts_are_counted_alike(accounts: Accounts) -> None:
    accounts.add("gone", PASSWORD)
    accounts.set_disabled("gone", True)
    for name in ("gone", "nobody"):
        assert accounts.sign_in(name, PASSWORD, "10.0.0.5") is None
        assert accounts.sign_in(name, PASSWORD, "10.0.0.5") is None
        with pytest.raises(RateLimited):
            accounts.sign_in(name, PASSWORD, "10.0.0.5")


def test_the_brake_keeps_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_MOST_KEYS", 100)
    brake = SignInBrake(known_per_account=3, clock=frozen)
    for n in range(1000):  # a flood from ever new addresses and names
        counted = brake.admit(f"user{n}", f"10.1.{n // 256}.{n % 256}")
        brake.succeeded(f"user{n % 7}", f"10.1.{n // 256}.{n % 256}", counted)
    assert len(brake._failures) <= 100
    assert len(brake._known) <= 100
    assert all(len(addresses) <= 3 for addresses in brake._known.values())


def test_a_restart_keeps_the_addresses_the_admin_signed_in_from(tmp_path: Path) -> None:
    from appliance.store.audit import AuditLog
    from appliance.wiring import build_accounts

    db = Database(tmp_path / "appliance.db")
    audit = AuditLog(db, address_days=30)
    build_accounts(db, audit).add("boss", PASSWORD, "admin")
    audit.record("boss", "sign_in", "boss", address="10.0.0.2")  # as the sign-in route does
    audit.record("-", "sign_in_failed", "boss", address="10.0.0.66")  # not a known address
    restarted = build_accounts(db, audit)  # a new brake, as after a restart
    for _ in range(5):  # a stranger holds the account's counter braked …
        assert restarted.sign_in("boss", "a guess", "10.0.0.66") is None
    with pytest.raises(RateLimited):
        restarted.sign_in("boss", PASSWORD, "10.0.0.3")
    with pytest.raises(RateLimited):  # (the stranger's failed address is not taken for known)
        restarted.sign_in("boss", PASSWORD, "10.0.0.66")
    assert restarted.sign_in("boss", PASSWORD, "10.0.0.2") is not None  # … the desk gets in
    db.close()


def spray(brake: SignInBrake, start: int, tries: int) -> None:
    """Failures on ever new names from ever new addresses: three new counters each."""
    for n in range(start, start + tries):
        brake.admit(f"name{n}", f"10.2.{n // 256}.{n % 256}")


def test_a_counter_counted_lately_outlives_a_spray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_MOST_KEYS", 100)
    brake = SignInBrake(free=5, clock=frozen)
    for n in range(5):  # one guess at the admin's name between bursts of sprayed names
        brake.admit("boss", f"10.9.0.{n}")
        spray(brake, 20 * n, 20)
    assert len(brake._failures) <= 100
    with pytest.raises(RateLimited):  # its 5 failures were all kept
        brake.admit("boss", "10.9.1.1")


def test_a_braking_counter_is_never_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "_MOST_KEYS", 100)
    brake = SignInBrake(free=5, clock=frozen)
    for n in range(5):
        brake.admit("boss", f"10.9.0.{n}")
    spray(brake, 0, 1000)  # fills the table many times over
    assert len(brake._failures) <= 100
    with pytest.raises(RateLimited):
        brake.admit("boss", "10.9.1.1")


def test_when_every_counter_brakes_a_try_needing_a_new_one_is_braked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "_MOST_KEYS", 30)
    brake = SignInBrake(free=1, address_free=1, clock=frozen)
    spray(brake, 0, 10)  # 30 counters, each over its one free failure
    before = dict(brake._failures)
    with pytest.raises(RateLimited):
        brake.admit("newcomer", "10.3.0.1")
    assert brake._failures == before  # none forgotten, none added


def test_ipv6_clients_are_counted_per_64_by_the_address_counter() -> None:
    brake = SignInBrake(free=100, address_free=3, clock=frozen)
    for n in range(3):  # one host picks a new address of its /64 for each name
        brake.admit(f"victim{n}", f"2001:db8:1:2::{n + 1}")
    with pytest.raises(RateLimited):
        brake.admit("victim9", "2001:db8:1:2:ffff::9")
    brake.admit("victim9", "2001:db8:1:3::1")  # another /64: counted apart
    brake.admit("victim9", "10.0.0.1")  # and IPv4 as before
