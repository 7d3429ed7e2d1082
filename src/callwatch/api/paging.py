"""Page slicing and the ``paging``/``navigation`` objects of RingCentral collections (§2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.datastructures import URL

from callwatch.api.schemas.common import Navigation, PageLink, Paging

T = TypeVar("T")
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of a collection plus what the response says about it."""

    uri: str
    paging: Paging
    navigation: Navigation


def paginate(items: Sequence[T], *, page: int, per_page: int, uri: str) -> tuple[list[T], Page]:
    """Slice ``items`` to ``page`` (1-based) and describe it.

    Args:
        uri: the absolute request URI; navigation links replace its ``page``/``perPage``.
    """
    total = len(items)
    total_pages = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    records = list(items[start : start + per_page])
    paging = Paging(
        page=page,
        total_pages=total_pages,
        per_page=per_page,
        total_elements=total,
        page_start=start if records else None,
        page_end=start + len(records) - 1 if records else None,
    )
    return records, Page(uri=uri, paging=paging, navigation=_navigation(uri, paging))


def _navigation(uri: str, paging: Paging) -> Navigation:
    def link(page: int) -> PageLink:
        return PageLink(uri=str(URL(uri).include_query_params(page=page, perPage=paging.per_page)))

    return Navigation(
        first_page=link(1),
        next_page=link(paging.page + 1) if paging.page < paging.total_pages else None,
        previous_page=link(paging.page - 1) if paging.page > 1 else None,
        last_page=link(paging.total_pages),
    )
