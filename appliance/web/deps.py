"""The names handlers receive by injection, marked as Litestar 2.23+ asks."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from appliance.config import LlmSettings
from appliance.services import Services
from appliance.store.users import User

ServicesDep: TypeAlias = NamedDependency[Services]
LlmDep: TypeAlias = NamedDependency[LlmSettings]
UserDep: TypeAlias = NamedDependency[User]
PathId: TypeAlias = FromPath[str]

__all__ = ["JSONBody", "LlmDep", "PathId", "ServicesDep", "UserDep"]
