from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from its_camera.choices import ApiScope
from its_camera.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The raw key is the last line of output and is shown only once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help=f"Comma-separated, from: {', '.join(ApiScope.values)}, or 'all'."
        )

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        wanted = (
            list(ApiScope.values) if scopes.strip() == "all" else [s.strip() for s in scopes.split(",") if s.strip()]
        )
        try:
            issued = api_key_create(name=name, scopes=wanted)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created API key {issued.api_key} with scopes {', '.join(issued.api_key.scopes)}.")
        self.stdout.write(issued.raw_key)
