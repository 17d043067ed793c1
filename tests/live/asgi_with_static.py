"""The ASGI application with the admin's static files served (as `make run` does with DEBUG on), for the
browser test: test settings run with DEBUG off, and the fleet page needs its vendored Chart.js."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from config.asgi import application as django_application

application = ASGIStaticFilesHandler(django_application)
