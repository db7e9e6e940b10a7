"""The loop a team would write instead of chatroster: the vendor's SDK, user after user.

For each user of the manifest, in order, with `ncsdk` (Nexconn's own Python SDK):
get the user (register it if missing, update name and avatar if they differ), read its
hosted profile and write it if it differs, read its tags and set them if they differ,
and, where the manifest gives a blocklist, read it and add and remove what differs.
One call at a time, each checked, as the obvious script does it. It reaches the same
state as chatroster for the manifests `bench/providers.py` compares it on (name,
avatar, profile, tags, blocklists), without an ownership marker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ncsdk import (
    ApiClient,
    ApiException,
    Configuration,
    UserBlocklistApi,
    UserManagementApi,
    UserProfileHostingApi,
)
from ncsdk import models as m

USER_NOT_FOUND = 24366
"""Nexconn's answer to user/get for a uid that is not registered (reference)."""


class SdkLoop:
    def __init__(self, base_url: str, app_key: str, app_secret: str) -> None:
        config = Configuration().set_nexconn_credentials(app_key, app_secret)
        config.set_primary_backup_domains(base_url, base_url)
        config.set_auto_failover_enabled(False)
        client = ApiClient(config)
        self.users = UserManagementApi(client)
        self.blocklist = UserBlocklistApi(client)
        self.profiles = UserProfileHostingApi(client)

    def sync(self, users: Mapping[str, Mapping[str, Any]]) -> None:
        for uid, user in users.items():
            self.sync_user(uid, user)

    def sync_user(self, uid: str, user: Mapping[str, Any]) -> None:
        name, avatar = user["name"], user.get("avatar")
        live = self._get(uid)
        if live is None:
            self.users.issue_access_token(m.AccessTokenIssueRequest(userId=uid, name=name, avatarUrl=avatar))
        elif live.name != name or (avatar is not None and live.avatar_url != avatar):
            self.users.update_user(m.UserUpdateRequest(userId=uid, name=name, avatarUrl=avatar))
        if "profile" in user:
            wanted = {key: value for key, value in user["profile"].items() if key != "ext"}
            found = self.profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[uid]))
            items = (found.result.users if found.result else None) or []
            current = (items[0].user_profile or {}) if items else {}
            if current != wanted:
                self.profiles.set_user_profile(m.UserProfileSetRequest(userId=uid, userProfile=wanted))
        if "tags" in user:
            got = self.users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=[uid]))
            tagged = (got.result.users if got.result else None) or []
            current_tags = sorted(tagged[0].tags or []) if tagged else []
            if current_tags != sorted(user["tags"]):
                tags = m.UserTagBatchSetRequest(userIds=[uid], tags=list(user["tags"]))
                self.users.batch_set_user_tags(tags)
        if "blocklist" in user:
            blocked = self._blocklist(uid)
            wanted_blocks = set(user["blocklist"])
            if wanted_blocks - blocked:
                self.blocklist.add_user_blocklist(
                    m.UserBlocklistAddRequest(userId=uid, targetUserIds=sorted(wanted_blocks - blocked))
                )
            if blocked - wanted_blocks:
                self.blocklist.remove_user_blocklist(
                    m.UserBlocklistRemoveRequest(userId=uid, blockedUserIds=sorted(blocked - wanted_blocks))
                )

    def _get(self, uid: str) -> Any:
        try:
            return self.users.get_user(m.UserGetRequest(userId=uid)).result
        except ApiException as exc:
            if json.loads(exc.body or "{}").get("code") == USER_NOT_FOUND:
                return None
            raise

    def _blocklist(self, uid: str) -> set[str]:
        blocked: set[str] = set()
        token = None
        while True:
            page = self.blocklist.get_user_blocklist(
                m.UserBlocklistGetRequest(userId=uid, pageToken=token, pageSize=100)
            )
            result = page.result
            blocked |= set((result.blocked_user_ids if result else None) or [])
            token = result.page_token if result else None
            if not token:
                return blocked
