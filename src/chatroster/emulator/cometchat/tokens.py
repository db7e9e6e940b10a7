"""CometChat v3 auth tokens: ``/users/{uid}/auth_tokens`` on the store's tokens.

Tokens never expire; the vendor keeps only the newest 100 per user active, so older
ones are deleted when a new one is issued.
"""

from __future__ import annotations

from typing import Any

from ...store import Store
from .. import storage
from .errors import ApiError
from .http import (
    Body,
    Call,
    Fields,
    action_result,
    active_user_row,
    ok,
    page_of,
    read_paging,
)

TOKENS_KEPT = 100


def token_json(uid: str, token: str, created_at: int) -> dict[str, Any]:
    return {"uid": uid, "authToken": token, "createdAt": created_at}


def create_token(store: Store, call: Call) -> Body:
    """Without ``force`` the newest existing token is returned (the vendor documents
    ``force`` as "generates a new auth token forcefully"); with it a new one is issued."""
    uid = call.uid()
    active_user_row(store, uid)
    fields = Fields(call.json())
    force = fields.boolean("force")
    fields.done()
    existing = store.tokens(uid)  # newest first
    if existing and not force:
        return ok(token_json(uid, *existing[0]))
    token, created_at = store.issue_token(uid)
    for old, _ in store.tokens(uid)[TOKENS_KEPT:]:
        storage.delete_tokens(store, uid, old)
    return ok(token_json(uid, token, created_at))


def list_tokens(store: Store, call: Call) -> Body:
    uid = call.uid()
    active_user_row(store, uid)
    query = Fields(call.query)
    paging = read_paging(query)
    query.done()
    tokens = store.tokens(uid)
    rows = [token_json(uid, token, created_at) for token, created_at in page_of(tokens, paging)]
    return ok(rows, paging.meta(rows, len(tokens)))


def flush_tokens(store: Store, call: Call) -> Body:
    uid = call.uid()
    active_user_row(store, uid)
    storage.delete_tokens(store, uid)
    return ok(action_result(f"Cleared Auth Tokens successfully for uid {uid}."))


def get_token(store: Store, call: Call) -> Body:
    uid = call.uid()
    active_user_row(store, uid)
    wanted = call.params["authToken"]
    for token, created_at in store.tokens(uid):
        if token == wanted:
            return ok(token_json(uid, token, created_at))
    raise _token_not_found(wanted)


def delete_token(store: Store, call: Call) -> Body:
    uid = call.uid()
    active_user_row(store, uid)
    token = call.params["authToken"]
    if not storage.delete_tokens(store, uid, token):
        raise _token_not_found(token)
    return ok(action_result(f"Auth Token {token} has been deleted successfully."))


def _token_not_found(token: str) -> ApiError:
    return ApiError(404, "ERR_AUTH_TOKEN_NOT_FOUND", f"The auth token {token} does not exist.")
