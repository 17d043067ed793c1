"""Operations pages in the admin (health, dashboards) and the panels of the admin home: two small registries
that the apps fill at import time (the kernel imports none of them), and the health page itself. Pages are
plain views wrapped in `admin.site.admin_view` (active staff only) and routed in config/urls.py before
`admin/`.

    admin_pages.register(title="Fleet status", url_name="operations-fleet", description="…")
    admin_pages.register_panel(key="fleet", title="Fleet", order=10,
                               template="admin/operations/panels/fleet.html", context=fleet_panel)

A panel's `context(now=…)` must be bounded (a few grouped queries on indexes, never a scan that grows with
the data): the admin home is the page every operator opens first. A panel that raises is shown with its
error; the other panels and the app list still render.

Being staff is not enough: each page requires the permission of what it shows (`permission`, checked by
the page's view and used to hide it from the index); the database health page, which shows every client's
query texts and the server's settings, is for superusers only.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from its_camera.monitoring import health_sections


@dataclass(frozen=True)
class AdminPage:
    title: str
    url_name: str
    description: str = ""
    permission: str = ""  # "superuser" for superusers only


_pages: dict[str, AdminPage] = {}
SUPERUSER = "superuser"


@dataclass(frozen=True)
class DashboardPanel:
    key: str
    title: str
    template: str
    context: Callable[..., dict[str, Any]]
    order: int = 100
    wide: bool = False  # two grid columns on wide screens (a table with long names)
    permission: str = ""  # what a user needs to see it (the permission of the data it shows)


_panels: dict[str, DashboardPanel] = {}
logger = logging.getLogger(__name__)


def register_panel(
    *,
    key: str,
    title: str,
    template: str,
    context: Callable[..., dict[str, Any]],
    order: int = 100,
    wide: bool = False,
    permission: str = "",
) -> None:
    """Show a panel on the admin home (re-registering a key replaces it). `context(now=…)` returns the
    template's context; panels are shown by `order`, then title."""
    _panels[key] = DashboardPanel(
        key=key, title=title, template=template, context=context, order=order, wide=wide, permission=permission
    )


def dashboard_now() -> datetime:
    """The admin home's clock (tests pin it)."""
    return timezone.now()


def dashboard_panels(*, now: datetime, user: Any = None) -> list[dict[str, Any]]:
    """Every registered panel (that `user` may see) with its context, or the error that kept it from being built."""
    built = []
    for panel in sorted(_panels.values(), key=lambda panel: (panel.order, panel.title)):
        if user is not None and not allowed(user, panel.permission):
            continue
        entry: dict[str, Any] = {
            "key": panel.key,
            "title": panel.title,
            "template": panel.template,
            "wide": panel.wide,
        }
        try:
            entry["data"] = panel.context(now=now)
        except Exception as error:  # one broken panel must not take the admin home down with it
            logger.exception("admin home panel %s failed", panel.key)
            entry["error"] = f"{type(error).__name__}: {error}"[:300]
        built.append(entry)
    return built


def register(*, title: str, url_name: str, description: str = "", permission: str = "") -> None:
    """List an operations page on the admin index (re-registering a url_name replaces it)."""
    _pages[url_name] = AdminPage(title=title, url_name=url_name, description=description, permission=permission)


def allowed(user: Any, permission: str) -> bool:
    """Whether `user` (staff, already checked by admin_view) may open a page needing `permission`."""
    if permission == SUPERUSER:
        return bool(user.is_superuser)
    return not permission or bool(user.has_perm(permission))


def require(request: HttpRequest, permission: str) -> None:
    """PermissionDenied (403) unless the request's user holds `permission`."""
    if not allowed(request.user, permission):
        raise PermissionDenied


def pages(user: Any = None) -> list[dict[str, str]]:
    """The registered pages whose URL resolves (and that `user` may open), for the admin index."""
    listed = []
    for page in _pages.values():
        if user is not None and not allowed(user, page.permission):
            continue
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        listed.append({"title": page.title, "url": url, "description": page.description})
    return listed


def render(request: HttpRequest, template: str, title: str, **context: object) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def health_page(request: HttpRequest) -> HttpResponse:
    require(request, SUPERUSER)
    contains = request.GET.get("statements_contains", "")[:100]
    return render(
        request,
        "admin/operations/health.html",
        "Database health",
        sections=health_sections(statements_contains=contains),
        statements_contains=contains,
    )


# The admin index lists the registered pages above the app list (the template extends the stock index).
admin.site.index_template = "admin/operations/index.html"

register(
    title="Database health",
    url_name="operations-health",
    description="Pool, connections, top queries, index usage, table and partition sizes.",
    permission=SUPERUSER,
)
