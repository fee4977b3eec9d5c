"""The periodic refresh of a directory's accounts, on a thread: groups, role and e-mail read
again; an account gone or disabled there loses its access here without waiting for a sign-in."""

from __future__ import annotations

import logging
import threading

from appliance.accounts.directory import Directory
from appliance.accounts.service import Accounts
from appliance.errors import ApplianceError
from appliance.store.audit import AuditLog

log = logging.getLogger(__name__)


class DirectorySync:
    """`every_s`: seconds between passes (auth.ldap.refresh_minutes x 60); 0: none."""

    def __init__(
        self, accounts: Accounts, directory: Directory, every_s: float, audit: AuditLog
    ) -> None:
        self._accounts, self._directory, self._audit = accounts, directory, audit
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="directory-sync", daemon=True)

    def start(self) -> None:
        if self._every_s:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def refresh(self) -> tuple[int, int]:
        """One pass over the directory's enabled accounts: (updated, access ended). Stops at
        the first DirectoryUnavailable (raised): a directory that is down ends nobody's access."""
        users, source = self._accounts.users, self._directory.source
        updated = ended = 0
        for user, external_id in users.external(source):
            if user.disabled:
                continue
            account = self._directory.lookup(external_id)
            if account is None:
                users.end_access(user.id)
                self._audit.record(
                    "-",
                    "user.end_access",
                    user.name,
                    f"gone or disabled in the directory ({source})",
                )
                ended += 1
                continue
            try:
                self._accounts.sync(source, account)
                updated += 1
            except ApplianceError as exc:  # renamed onto a local account's name, say
                log.warning("directory refresh: %s: %s", user.name, exc)
        return updated, ended

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                updated, ended = self.refresh()
                log.info("directory refresh: %d accounts read again, %d ended", updated, ended)
            except Exception as exc:
                log.warning(
                    "directory refresh failed (%s); it is tried again in %.0f s", exc, self._every_s
                )
