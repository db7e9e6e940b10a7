"""CometChat v3 roles: ``/roles`` on the store's roles (settings in ``role_settings``).

The vendor's apps always have a ``default`` role, which cannot be deleted; an app holds
at most 25 roles, ``default`` included.
"""

from __future__ import annotations

import json
from typing import Any

from ...store import Store
from .. import storage
from .errors import ApiError
from .http import (
    Body,
    Call,
    Fields,
    action_result,
    loads,
    ok,
    page_of,
    read_paging,
)

DEFAULT_ROLE = "default"
DEFAULT_ROLE_NAME = "Default Role"
ROLES_MAX = 25
NAME_MAX = 100
DESCRIPTION_MAX = 255
UNSETTABLE = ("settings", "description", "metadata")
SETTING_VALUES = ("all", "friendsOnly")


def ensure_default_role(store: Store) -> None:
    storage.ensure_role(store, DEFAULT_ROLE, DEFAULT_ROLE_NAME)


def role_json(row: dict[str, Any], settings: Any) -> dict[str, Any]:
    """A stored role as the vendor's role object; unset optional fields are left out."""
    role: dict[str, Any] = {"role": row["role"], "name": row["name"]}
    if row["description"] is not None:
        role["description"] = row["description"]
    if row["metadata"] is not None:
        role["metadata"] = loads(row["metadata"])
    if settings is not None:
        role["settings"] = settings
    role["createdAt"] = row["created_at"]
    if row["updated_at"] != row["created_at"]:
        role["updatedAt"] = row["updated_at"]
    return role


def _read_role(fields: Fields, *, creating: bool) -> dict[str, Any]:
    """The role fields present in the body; ``settings`` is checked for known values.

    ``description`` is in the reference's create request but not in the OpenAPI file's;
    that file's update request can ``unset`` a description and does not forbid other
    fields, so accepting it on create agrees with both.
    """
    settings = fields.obj("settings")
    for key in ("listUsers", "sendMessagesTo"):
        if settings and key in settings and settings[key] not in SETTING_VALUES:
            fields.fail("settings", f"The settings {key} must be 'all' or 'friendsOnly'.")
    read: dict[str, Any] = {
        "name": fields.string("name", max_len=NAME_MAX, required=creating),
        "description": fields.string("description", max_len=DESCRIPTION_MAX),
        "metadata": fields.obj("metadata"),
        "settings": settings,
    }
    # None: absent, null or invalid (then recorded in `fields`); either way no change.
    return {key: value for key, value in read.items() if value is not None}


def _store_role(store: Store, role: str, changes: dict[str, Any]) -> None:
    """Write the role columns and its settings as one change."""
    if not changes:
        return  # nothing asked: keep updatedAt as it is
    columns = {key: value for key, value in changes.items() if key != "settings"}
    if "metadata" in columns and columns["metadata"] is not None:
        columns["metadata"] = json.dumps(columns["metadata"], separators=(",", ":"))
    with store.transaction():
        storage.put_role(store, role, columns)
        if "settings" in changes:
            storage.set_role_settings(store, role, changes["settings"])


def _role(store: Store, role: str) -> dict[str, Any]:
    row = storage.get_role(store, role)
    if row is None:
        raise ApiError(404, "ERR_ROLE_NOT_FOUND", f"The role {role} does not exist.")
    return role_json(row, storage.role_settings(store).get(role))


def create_role(store: Store, call: Call) -> Body:
    fields = Fields(call.json())
    role = fields.identifier("role", required=True)
    changes = _read_role(fields, creating=True)
    fields.done()
    assert role is not None  # done() raised otherwise
    with store.transaction():  # count, existence check and insert are one step
        if storage.get_role(store, role) is not None:
            raise ApiError(400, "ERR_ROLE_ALREADY_EXISTS", f"The role {role} already exists.")
        if len(storage.roles(store)) >= ROLES_MAX:
            raise ApiError(
                400,
                "ERR_BAD_REQUEST",
                f"An app may have at most {ROLES_MAX} roles; delete one before creating {role}.",
            )
        _store_role(store, role, changes)
    return ok(_role(store, role))


def list_roles(store: Store, call: Call) -> Body:
    query = Fields(call.query)
    paging = read_paging(query)
    query.done()
    rows, settings = storage.roles(store), storage.role_settings(store)
    roles = [role_json(row, settings.get(row["role"])) for row in page_of(rows, paging)]
    return ok(roles, paging.meta(roles, len(rows)))


def get_role(store: Store, call: Call) -> Body:
    return ok(_role(store, call.uid("role")))


def update_role(store: Store, call: Call) -> Body:
    role = call.uid("role")
    _role(store, role)
    fields = Fields(call.json())
    changes = _read_role(fields, creating=False)
    if "name" in changes and not changes["name"]:
        fields.fail("name", "The name field is required.")
    unset = fields.strings("unset", choices=UNSETTABLE) or []
    for name in unset:
        if name in changes:
            fields.fail("unset", f"The {name} cannot be set and unset in one request.")
    fields.done()
    changes.update({name: None for name in unset})
    _store_role(store, role, changes)
    return ok(_role(store, role))


def delete_role(store: Store, call: Call) -> Body:
    """Users keep the role name they hold: the store keeps what was written."""
    role = call.uid("role")
    if role == DEFAULT_ROLE:
        raise ApiError(400, "ERR_ROLE_DELETE_DENIED", "The default role cannot be deleted.")
    with store.transaction():
        if not storage.delete_role(store, role):
            raise ApiError(404, "ERR_ROLE_NOT_FOUND", f"The role {role} does not exist.")
        storage.set_role_settings(store, role, None)
    return ok(action_result(f"Role {role} has been deleted successfully."))
