from typing import Any

from django import template

from its_camera import admin_pages

register = template.Library()


@register.simple_tag
def operations_pages() -> list[dict[str, str]]:
    """The operations pages (health, dashboards) for the admin index."""
    return admin_pages.pages()


@register.simple_tag
def operations_panels() -> list[dict[str, Any]]:
    """The admin home's panels (fleet, alerts, ingest, storage, jobs), built now."""
    return admin_pages.dashboard_panels(now=admin_pages.dashboard_now())
