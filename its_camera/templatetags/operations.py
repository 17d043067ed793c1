from typing import Any

from django import template

from its_camera import admin_pages

register = template.Library()


@register.simple_tag(takes_context=True)
def operations_pages(context: template.Context) -> list[dict[str, str]]:
    """The operations pages (health, dashboards) the signed-in user may open, for the admin index."""
    request = context.get("request")
    return admin_pages.pages(getattr(request, "user", None))


@register.simple_tag(takes_context=True)
def operations_panels(context: template.Context) -> list[dict[str, Any]]:
    """The admin home's panels (fleet, alerts, ingest, storage, jobs) the signed-in user may see, built now."""
    request = context.get("request")
    return admin_pages.dashboard_panels(now=admin_pages.dashboard_now(), user=getattr(request, "user", None))
