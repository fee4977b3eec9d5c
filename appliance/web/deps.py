"""The names handlers receive by injection, marked as Litestar 2.23+ asks."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter

from appliance.config import LlmSettings
from appliance.services import Services
from appliance.store.users import User

ServicesDep: TypeAlias = NamedDependency[Services]
LlmDep: TypeAlias = NamedDependency[LlmSettings]
UserDep: TypeAlias = NamedDependency[User]
PathId: TypeAlias = FromPath[str]
# An SQLite row id in the address: a larger number cannot be looked up (OverflowError: a 500).
RowId: TypeAlias = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]

__all__ = ["JSONBody", "LlmDep", "PathId", "RowId", "ServicesDep", "UserDep"]
