from django import template

from its_camera import admin_pages

register = template.Library()


@register.simple_tag
def operations_pages() -> list[dict[str, str]]:
    """The operations pages (health, dashboards) for the admin index."""
    return admin_pages.pages()
