import os
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
django_application: Any = get_asgi_application()

from its_camera.body_limits import BodyLimitMiddleware  # noqa: E402 - needs the app registry, set up above

# Bodies under /api/ are checked (size, and a valid key for big ones) before Django reads them.
application: Any = BodyLimitMiddleware(django_application)

if settings.DEBUG:
    # `make run` serves the admin's static files the way runserver did; production serves collectstatic's
    # output from the reverse proxy (docs/live.md).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
