"""Plumbing shared by the CometChat v3 endpoint groups: reading and checking requests,
the success envelope, paging, and the lookups every group makes.

Handlers are plain synchronous functions of ``(store, call)`` that return the JSON body
of a 200 reply or raise `ApiError` (`errors.py`); `routes.py` turns them into HTTP
endpoints. Keeping HTTP out of the handlers keeps them short and lets SQLite run off
the event loop.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, QueryParams

from ...store import Store
from .. import storage
from .errors import bad_request, uid_not_found

Body = dict[str, Any]
Handler = Callable[[Store, "Call"], Body]

#: uid and role ids: the vendor lowercases them, so upper case is accepted on the way in.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
ID_MAX = 100
#: The vendor documents the maximum page size for users; the other lists use the same.
PER_PAGE_DEFAULT = 100
PER_PAGE_MAX = 1000


def ok(data: Any, meta: Mapping[str, Any] | None = None) -> Body:
    return {"data": data, "meta": dict(meta)} if meta is not None else {"data": data}


def action_result(message: str) -> dict[str, Any]:
    """What the vendor answers for actions (delete, flush, block one uid, ...)."""
    return {"success": True, "message": message}


@dataclass(frozen=True)
class Call:
    """One request, reduced to what handlers read."""

    params: Mapping[str, str]
    query: QueryParams
    headers: Headers
    body: bytes

    def uid(self, name: str = "uid") -> str:
        """A path id; lookups are case-insensitive because ids are stored lowercased."""
        return self.params[name].lower()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is ``{}`` (DELETE calls often send none)."""
        if not self.body.strip():
            return {}
        try:
            # NaN and Infinity are not JSON; accepted, they could not be answered back.
            value = json.loads(self.body, parse_constant=_not_json)
        except RecursionError:
            raise bad_request("The request body is nested too deeply.") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            raise bad_request(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise bad_request("The request body must be a JSON object.")
        return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _label(name: str) -> str:
    """``perPage`` -> ``per page``: the wording of the vendor's validation messages."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


class Fields:
    """Reads fields of a body or query and collects every problem, reported at once.

    Each reader returns the value (``None`` when absent or invalid) and records the
    vendor-style message under the field name; `done` raises ERR_BAD_REQUEST with them.
    """

    def __init__(self, source: Mapping[str, Any]) -> None:
        self.source = source
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def done(self) -> None:
        if self.errors:
            raise bad_request("Failed to validate the data.", self.errors)

    def present(self, name: str) -> bool:
        return name in self.source

    # ------------------------------------------------------------------ JSON body

    def string(self, name: str, *, max_len: int | None = None, required: bool = False) -> str | None:
        value = self.source.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, f"The {_label(name)} field is required.")
                return None
            return value
        if not isinstance(value, str):
            self.fail(name, f"The {_label(name)} must be a string.")
            return None
        if max_len is not None and len(value) > max_len:
            self.fail(name, f"The {_label(name)} may not be greater than {max_len} characters.")
            return None
        return value

    def identifier(self, name: str, *, required: bool = False) -> str | None:
        """A uid or role id: at most 100 of a-z 0-9 - _, lowercased as the vendor does."""
        value = self.string(name, max_len=ID_MAX, required=required)
        if value is None or value == "":
            return None
        if not ID_PATTERN.match(value):
            self.fail(
                name,
                f"The {_label(name)} may only contain letters, numbers, dashes and underscores.",
            )
            return None
        return value.lower()

    def boolean(self, name: str) -> bool | None:
        value = self.source.get(name)
        if value is None or isinstance(value, bool):
            return value
        self.fail(name, f"The {_label(name)} field must be true or false.")
        return None

    def obj(self, name: str) -> dict[str, Any] | None:
        value = self.source.get(name)
        if value is None or isinstance(value, dict):
            return value
        self.fail(name, f"The {_label(name)} must be a JSON object.")
        return None

    def strings(
        self,
        name: str,
        *,
        max_items: int | None = None,
        max_len: int | None = None,
        required: bool = False,
        choices: Sequence[str] | None = None,
    ) -> list[str] | None:
        value = self.source.get(name)
        if value is None or value == []:
            if required:
                self.fail(name, f"The {_label(name)} field is required.")
            return None if value is None else []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(name, f"The {_label(name)} must be an array of strings.")
            return None
        if max_items is not None and len(value) > max_items:
            self.fail(name, f"The {_label(name)} may not have more than {max_items} items.")
            return None
        problems = [item for item in value if max_len is not None and len(item) > max_len]
        problems += [item for item in value if choices is not None and item not in choices]
        for item in problems:
            self.fail(name, f"The {_label(name)} entry {item[:40]!r} is invalid.")
        return None if problems else list(value)

    # ----------------------------------------------------------------------- query

    def query_bool(self, name: str) -> bool:
        value = self.source.get(name)
        if value is None:
            return False
        if value.lower() in ("true", "1"):
            return True
        if value.lower() not in ("false", "0", ""):
            self.fail(name, f"The {_label(name)} field must be true or false.")
        return False

    def query_int(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        value = self.source.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(name, f"The {_label(name)} must be an integer.")
            return default
        if not minimum <= number <= maximum:
            self.fail(name, f"The {_label(name)} must be between {minimum} and {maximum}.")
            return default
        return number

    def query_list(self, name: str, *, choices: Sequence[str] | None = None) -> list[str]:
        """Comma-separated values (``roles=a,b``), also accepted as a repeated parameter.

        The reference says comma-separated; the OpenAPI file declares ``roles`` and
        ``searchIn`` as arrays with the default (exploded, repeated) query style and
        only ``tags`` as comma-separated. Both spellings are read, so both agree.
        """
        raw = self.source.getlist(name) if isinstance(self.source, QueryParams) else []
        items = [item.strip() for value in raw for item in value.split(",") if item.strip()]
        for item in items:
            if choices is not None and item not in choices:
                self.fail(name, f"The selected {_label(name)} {item!r} is invalid.")
        return items

    def query_choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self.source.get(name) or default
        if value not in choices:
            self.fail(name, f"The selected {_label(name)} is invalid.")
            return default
        return str(value)


@dataclass(frozen=True)
class Paging:
    """The vendor's page-based paging: ``perPage`` rows of 1-based ``page``."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def meta(self, page: Sequence[Mapping[str, Any]], total: int) -> dict[str, Any]:
        """``meta`` of a list answer: ``pagination`` and ``cursor``.

        total_pages is at least 1, as in the vendor's examples (Laravel's lastPage).
        The cursor is ``{updatedAt, affix}`` in ``meta``, as the reference has it (the
        OpenAPI file's list-users example shows the same object); ``updatedAt`` is the
        latest ``updatedAt`` (else ``createdAt``) on the page, as in that example, and
        the time of the answer for an empty page. No list documents cursor parameters,
        so none are taken.
        """
        pages = max(1, math.ceil(total / self.per_page))
        times = [int(item.get("updatedAt") or item.get("createdAt") or 0) for item in page]
        return {
            "pagination": {
                "total": total,
                "count": len(page),
                "per_page": self.per_page,
                "current_page": self.page,
                "total_pages": pages,
            },
            "cursor": {"updatedAt": max(times, default=int(time.time())), "affix": "prepend"},
        }


def read_paging(fields: Fields) -> Paging:
    per_page = fields.query_int("perPage", default=PER_PAGE_DEFAULT, minimum=1, maximum=PER_PAGE_MAX)
    page = fields.query_int("page", default=1, minimum=1, maximum=10**9)
    return Paging(page, per_page)


def page_of(items: Sequence[Any], paging: Paging) -> list[Any]:
    """One page of a short list held in memory (tokens, roles: at most 100 and 25)."""
    return list(items[paging.offset : paging.offset + paging.per_page])


def active_user_row(store: Store, uid: str) -> dict[str, Any]:
    """The user's record; deactivated users answer as not found, as the vendor's do."""
    row = storage.user_row(store, uid)
    if row is None or not row["active"]:
        raise uid_not_found(uid)
    return row


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
