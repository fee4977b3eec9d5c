"""The ApplianceError tree: failures a user can act on, with no HTTP codes attached."""


class ApplianceError(Exception):
    """Base of every error the appliance reports to a person."""


class ModelError(ApplianceError):
    """A model file is missing, truncated, not GGUF, or cannot be loaded."""


class EngineBusy(ApplianceError):
    """The engine's queue is full; the caller should retry later, after `retry_after` seconds
    when the engine could estimate it (None: the configured default)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRequest(ApplianceError):
    """A request is well-formed but cannot be served (e.g. the prompt exceeds n_ctx)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NotFound(ApplianceError):
    """The named thing (conversation, message) does not exist."""


class ModelNotFound(NotFound):
    """A request names a model (the OpenAI API's `model`) that is not the one served."""

    param = "model"


class Unauthorized(ApplianceError):
    """No valid sign-in or API key came with the request."""


class Forbidden(ApplianceError):
    """Signed in, but this needs another role (or a CSRF token the request lacks)."""


class Conflict(ApplianceError):
    """The request clashes with work in progress (e.g. a conversation already answering)."""


class RateLimited(ApplianceError):
    """Too many requests for now; `retry_after` says when to try again (seconds)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(ApplianceError):
    """A request or message is over the configured size limit."""


class StoreError(ApplianceError):
    """The database under the data directory cannot be opened or written."""


class ExtractError(ApplianceError):
    """A document cannot be read (damaged, encrypted, empty, too big); the message says why."""


class IndexBusy(ApplianceError):
    """Another process (a running server, or an `appliance ingest`) is indexing the folder."""


class DirectoryUnavailable(ApplianceError):
    """The company directory (LDAP server, OIDC provider) cannot be reached or refused the
    appliance's own credentials; local accounts still sign in."""
