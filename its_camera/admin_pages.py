"""Operations pages in the admin (health, dashboards): a small registry that the admin index lists, and
the health page itself. Pages are plain views wrapped in `admin.site.admin_view` (active staff only) and
routed in config/urls.py before `admin/`.

    admin_pages.register(title="Fleet status", url_name="operations-fleet", description="…")
"""

from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from its_camera.monitoring import health_sections


@dataclass(frozen=True)
class AdminPage:
    title: str
    url_name: str
    description: str = ""


_pages: dict[str, AdminPage] = {}


def register(*, title: str, url_name: str, description: str = "") -> None:
    """List an operations page on the admin index (re-registering a url_name replaces it)."""
    _pages[url_name] = AdminPage(title=title, url_name=url_name, description=description)


def pages() -> list[dict[str, str]]:
    """The registered pages whose URL resolves, for the admin index."""
    listed = []
    for page in _pages.values():
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        listed.append({"title": page.title, "url": url, "description": page.description})
    return listed


def render(request: HttpRequest, template: str, title: str, **context: object) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def health_page(request: HttpRequest) -> HttpResponse:
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
)
