"""Admin actions on accounts over HTTP: the list, and erasing a user's data."""

from __future__ import annotations

from litestar import delete, get

from appliance.store.users import User
from appliance.web.auth import ADMIN
from appliance.web.deps import PathId, ServicesDep, UserDep


@get("/api/users", opt=ADMIN)
async def list_users(services: ServicesDep) -> list[User]:
    return services.accounts.users.all()


@delete("/api/users/{name:str}/data", opt=ADMIN, status_code=200)
async def erase_user_data(name: PathId, services: ServicesDep, user: UserDep) -> dict[str, int]:
    """Deletes every conversation of the user `name` (the account itself stays)."""
    target = services.accounts.users.by_name(name)
    deleted = services.chat.delete_all(target.id)
    services.audit.record(user.name, "user.erase", target.name, f"{deleted} conversations")
    return {"deleted": deleted}
