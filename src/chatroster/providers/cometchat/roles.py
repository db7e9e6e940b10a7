"""CometChat roles: read in one call, and one call per role change.

    GET /roles?perPage=100           every role (an app has at most 25)
    POST /roles                      create, with the ownership marker in its metadata
    PUT /roles/{role}                description, metadata, the marker (adopt)
    DELETE /roles/{role}             delete

The raw metadata of each role read is kept, so that writing the marker (adopting a
role) keeps the rest of its metadata, as for users.
"""

from __future__ import annotations

import threading
from typing import Any

from ...changes import Change
from ...errors import CometChatError
from ...model import DEFAULT_ROLE, Role
from .api import MARKER_KEY, ROLES_PER_PAGE, _role_from_api, _role_to_api, marker_from_api
from .batches import Outcome
from .client import CometChatClient


class Roles:
    """The app's roles, as last read, and the calls that change them."""

    def __init__(self, client: CometChatClient) -> None:
        self.client = client
        self._metadata: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def read(self) -> dict[str, Role]:
        """Every role but the built-in ``default``, in one call."""
        rows = self.client.call("GET", "/roles", params={"perPage": ROLES_PER_PAGE, "page": 1}) or []
        roles: dict[str, Role] = {}
        for row in rows:
            role = _role_from_api(row)
            self._remember(role.name, row.get("metadata"))
            if role.name != DEFAULT_ROLE:
                roles[role.name] = role
        return roles

    def create(self, change: Change) -> Outcome:
        owner = change.after["owner"]
        body = {"role": change.uid, "name": change.uid, **_role_to_api(change.after, {"owner": owner}, {})}
        try:
            data = self.client.call("POST", "/roles", json=body)
        except CometChatError as exc:
            if exc.code != "ERR_ROLE_ALREADY_EXISTS":
                raise
            return self._verify_created(change.uid, owner)
        self._remember(change.uid, (data or {}).get("metadata"))
        return None

    def update(self, change: Change) -> Outcome:
        raw = self._current_metadata(change.uid)
        marker = marker_from_api(raw.pop(MARKER_KEY, None))
        if "owner" in change.after:
            marker["owner"] = change.after["owner"]
        # Metadata is replaced as a whole, so the marker and the rest are written again.
        keep = raw if "owner" in change.after or "metadata" in change.after else None
        body = _role_to_api(change.after, marker, keep)
        data = self.client.call("PUT", f"/roles/{change.uid}", json=body)
        self._remember(change.uid, (data or {}).get("metadata"))
        return None

    def delete(self, change: Change) -> Outcome:
        try:
            self.client.call("DELETE", f"/roles/{change.uid}")
        except CometChatError as exc:
            if exc.code != "ERR_ROLE_NOT_FOUND":  # gone already: a retried delete
                raise
        return None

    def _verify_created(self, role: str, owner: str) -> Outcome:
        """After "already exists": done if the role carries our marker (an earlier
        attempt of this very request succeeded), else a failure that says what to do."""
        metadata = self._current_metadata(role)
        if marker_from_api(metadata.get(MARKER_KEY)).get("owner") == owner:
            return None
        return f"role '{role}' already exists on CometChat and is not owned by '{owner}'; run plan again"

    def _remember(self, role: str, metadata: Any) -> None:
        with self._lock:
            self._metadata[role] = dict(metadata) if isinstance(metadata, dict) else {}

    def _current_metadata(self, role: str) -> dict[str, Any]:
        with self._lock:
            known = self._metadata.get(role)
        if known is None:
            data = self.client.call("GET", f"/roles/{role}") or {}
            self._remember(role, data.get("metadata"))
            known = dict(data.get("metadata") or {})
        return dict(known)
