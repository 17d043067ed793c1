import json
import secrets
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from its_camera.choices import ApiScope
from its_camera.models import ApiKey
from its_camera.services.api_keys import api_key_create

DEMO_KEY_NAME = "demo fleet (created by make run)"


class Command(BaseCommand):
    help = (
        "First-run set-up for a local install: creates an admin user and a demo API key once, "
        "keeps their secrets in a credentials file and prints them. Safe to run on every start."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--credentials-file", type=Path, required=True)
        parser.add_argument("--admin-username", default="admin")

    def handle(self, *args: Any, credentials_file: Path, admin_username: str, **options: Any) -> None:
        credentials: dict[str, str] = {}
        if credentials_file.exists():
            credentials = json.loads(credentials_file.read_text())

        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=admin_username, email="", password=password)
            credentials.update(admin_username=admin_username, admin_password=password)
            self.stderr.write(f"Created superuser {admin_username!r}.")

        if not ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).exists():
            issued = api_key_create(name=DEMO_KEY_NAME, scopes=list(ApiScope.values))
            credentials["demo_api_key"] = issued.raw_key
            self.stderr.write("Created the demo API key (all scopes).")

        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(json.dumps(credentials, indent=2))
        credentials_file.chmod(0o600)
        self.stdout.write(json.dumps(credentials))
