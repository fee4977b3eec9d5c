"""Per-user limits on chat (requests a minute, answers at once) and the brake on failed
sign-ins (per account and address, per address, per account). In memory: one process."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from appliance.errors import RateLimited

_MOST_KEYS = 10_000  # counters of failures (and accounts with known addresses) kept at most


class ChatLimits:
    """Requests a minute and at once per user; one instance per kind of request (chat,
    search, redaction), each counting apart. `kind` names them in the errors."""

    def __init__(self, per_minute: int, concurrent: int, kind: str = "chat",
                 running: str = "answers") -> None:  # fmt: skip
        self._per_minute = per_minute
        self._concurrent = concurrent
        self._kind, self._running = kind, running
        self._recent: dict[object, deque[float]] = defaultdict(deque)
        self._open: dict[object, int] = defaultdict(int)
        self._lock = threading.Lock()

    @contextmanager
    def request(self, user: object) -> Iterator[None]:
        """Counts one chat request of `user`, held open while its answer streams."""
        with self._lock:
            now = time.monotonic()
            recent = self._recent[user]
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self._per_minute:
                wait = int(60 - (now - recent[0])) + 1
                raise RateLimited(f"more than {self._per_minute} {self._kind} requests a "
                                  f"minute; wait {wait} s", retry_after=wait)  # fmt: skip
            if self._open[user] >= self._concurrent:
                raise RateLimited(f"{self._concurrent} {self._running} of yours are already "
                                  "running; wait for one to finish or stop it",
                                  retry_after=2)  # fmt: skip
            recent.append(now)
            self._open[user] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[user] -= 1


class SignInBrake:
    """Slows password guessing without letting a stranger lock anyone out of where they sign in.

    Each try is counted against three counters: the (account, address) pair, the address and
    the account. After `free` failures within the window (`address_free` for an address, which
    several people may share), each further try must wait twice as long as the last (1 s, 2 s,
    4 s … at most `longest_s`). A success clears only its pair: a sprayer who signs in as
    themselves between guesses at other names stays counted by the address. The account's
    counter is not applied to an address this account signed in from before, so someone failing
    on the admin's name slows other strangers, never the admin at their usual desk. Known
    addresses are the last `known_per_account` of each account: `known` seeds them at start
    (the audit log's recent sign-ins), so a restart does not leave the admin braked like a
    stranger. An IPv6 client is counted per /64 for its address counter (one host holds many).
    The counters are kept in memory, at most _MOST_KEYS: the least recently counted go first,
    never one that brakes (when all brake, a try that needs a new counter is braked)."""

    def __init__(
        self,
        free: int = 5,
        window_s: float = 900,
        longest_s: float = 300,
        address_free: int | None = None,
        known_per_account: int = 8,
        clock: Callable[[], float] = time.monotonic,
        known: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._free, self._window, self._longest, self._clock = free, window_s, longest_s, clock
        self._address_free = 4 * free if address_free is None else address_free
        self._known_per_account = known_per_account
        self._most = max(free, self._address_free) + 16  # failures kept per counter
        self._failures: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()
        self._known: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._lock = threading.Lock()
        for account, address in known:  # oldest first: the newest stay
            self._remember(account.lower(), address)

    def admit(self, account: str, address: str) -> float:
        """Raises RateLimited while braked; else counts this try as failed (before the slow
        password check, so parallel tries count too) and returns the time counted, for
        `succeeded` to take back."""
        account = account.lower()
        with self._lock:
            now = self._clock()
            counters = self._counters(account, address)
            known = address in self._known.get(account, ())
            wait = max(
                self._wait(key, free, now)
                for key, free in counters
                if not (known and key[0] == "account")
            )
            if wait <= 0 and not self._room(counters, now):
                wait = self._longest  # all counters brake: forgetting one would free its tries
            if wait <= 0:
                for key, _ in counters:
                    self._count(key, now)
        if wait > 0:
            raise RateLimited(
                f"too many failed sign-ins; try again in {int(wait) + 1} s",
                retry_after=int(wait) + 1,
            )
        return now

    def succeeded(self, account: str, address: str, counted: float) -> None:
        """The try counted at `counted` was right: its pair starts afresh, the address becomes
        known-good for the account, and the other counters forget this one try only."""
        account = account.lower()
        with self._lock:
            for key, _ in self._counters(account, address):
                failures = self._failures.get(key)
                if key[0] == "pair" or not failures:
                    self._failures.pop(key, None)
                elif counted in failures:
                    failures.remove(counted)
            self._remember(account, address)

    def _remember(self, account: str, address: str) -> None:
        known = self._known.setdefault(account, OrderedDict())
        self._known.move_to_end(account)
        known[address] = None
        known.move_to_end(address)
        while len(known) > self._known_per_account:
            known.popitem(last=False)
        while len(self._known) > _MOST_KEYS:
            self._known.popitem(last=False)

    def _counters(self, account: str, address: str) -> tuple[tuple[tuple[str, ...], int], ...]:
        return (
            (("pair", account, address), self._free),
            (("address", _network(address)), self._address_free),
            (("account", account), self._free),
        )

    def _count(self, key: tuple[str, ...], now: float) -> None:
        self._failures.setdefault(key, deque(maxlen=self._most)).append(now)
        self._failures.move_to_end(key)  # least recently counted first

    def _room(self, counters: tuple[tuple[tuple[str, ...], int], ...], now: float) -> bool:
        """Whether the counters of a try fit, after forgetting some if need be."""
        new = sum(key not in self._failures for key, _ in counters)
        if len(self._failures) + new > _MOST_KEYS:
            self._forget(now)
        return len(self._failures) + new <= _MOST_KEYS

    def _forget(self, now: float) -> None:
        """Bounded memory: counters with only old failures go first, then the least recently
        counted of those that do not brake. One that brakes stays: forgetting it would give
        an attacker its tries back (filling the table with sprayed names wiped them)."""
        for stale in [k for k, f in self._failures.items() if not f or now - f[-1] > self._window]:
            del self._failures[stale]
        excess = len(self._failures) - _MOST_KEYS * 9 // 10
        for key in list(self._failures):
            if excess <= 0:
                break
            free = self._address_free if key[0] == "address" else self._free
            if self._live(self._failures[key], now) < free:
                del self._failures[key]
                excess -= 1

    def _wait(self, key: tuple[str, ...], free: int, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        over = self._live(failures, now) - free
        if over < 0:
            return 0.0
        return max(0.0, failures[-1] + min(2.0**over, self._longest) - now)

    def _live(self, failures: deque[float], now: float) -> int:
        """The failures within the window (older ones are dropped)."""
        while failures and now - failures[0] > self._window:
            failures.popleft()
        return len(failures)


def _network(address: str) -> str:
    """What the address counter counts: an IPv6 client's /64 (one host or home gets a whole
    /64 to pick addresses from), an IPv4 one (mapped or not) as it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # not an IP address (a test client, a Unix socket): as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
