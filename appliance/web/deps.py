"""The names handlers receive by injection, marked as Litestar 2.23+ asks."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter

from appliance.config import LlmSettings
from appliance.services import Services
from appliance.store.audience import Reader
from appliance.store.users import User

ServicesDep: TypeAlias = NamedDependency[Services]
LlmDep: TypeAlias = NamedDependency[LlmSettings]
UserDep: TypeAlias = NamedDependency[User]
ReaderDep: TypeAlias = NamedDependency[Reader]  # the documents the user may see
PathId: TypeAlias = FromPath[str]
# A row id in the address or query: SQLite's OverflowError made a larger one a 500. Bounded
# where every JSON reader (and the schema's float `maximum`) still reads it exactly.
MAX_ROW_ID = 2**53 - 1
RowId: TypeAlias = Annotated[int, PathParameter(ge=1, le=MAX_ROW_ID)]

__all__ = ["MAX_ROW_ID", "JSONBody", "LlmDep", "PathId", "ReaderDep", "RowId", "ServicesDep",
           "UserDep"]  # fmt: skip
