"""Settings shared by every environment. Values come from the environment (django-environ)."""

from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from import_export.formats import base_formats

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "psqlextra",
    "ninja",
    "django_celery_beat",
    "import_export",
    "its_camera",
    "cameras",
    "telemetry",
    "archival",
    "notifications",
    "traffic",
]

MIDDLEWARE = [
    "its_camera.logs.request_id_middleware",  # first: every line logged for the request carries its id
    "its_camera.metrics.metrics_middleware",  # counts every request, whatever answers it
    # Outside everything that can answer with an HTML error (a disallowed Host, CSRF, 404, 405): under /api/
    # every error is JSON, whichever layer produced it.
    "its_camera.api.errors.ApiJsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# psqlextra's backend (partitioned tables) on psycopg 3 with Django's native connection pool.
# Pool sizes follow the seed per environment (prod 50/100, staging 20/40, dev 10/20) and can be
# overridden with DB_POOL_MIN_SIZE / DB_POOL_MAX_SIZE.
DB_POOL_SIZES = {"production": (50, 100), "staging": (20, 40), "development": (10, 20), "test": (1, 4)}
DEPLOY_ENVIRONMENT = env("DEPLOY_ENVIRONMENT", default="development")
DB_APPLICATION_NAME = env("DB_APPLICATION_NAME", default="its_camera_ai")
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=5)
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=30_000)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=10.0)
DB_BEHIND_PGBOUNCER = env.bool("DB_BEHIND_PGBOUNCER", default=False)
DATABASE_URL = env("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/its_camera")


def database_settings(url: str, *, environment: str) -> dict:
    """Build the `default` database from a URL, with the pool and session settings of `environment`."""
    config = environ.Env.db_url_config(url)
    # A unix-socket directory is given URL-encoded in the host part (postgres://u@%2Fpath%2Fto/db).
    config["HOST"] = unquote(config["HOST"])
    min_size, max_size = DB_POOL_SIZES[environment]
    config["ENGINE"] = "psqlextra.backend"
    # PgBouncer refuses `options` in the startup packet: behind it, statement_timeout is set on the server
    # (ALTER ROLE … SET statement_timeout), see deploy/pgbouncer.ini.
    session_options = {} if DB_BEHIND_PGBOUNCER else {"options": f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"}
    config["OPTIONS"] = {
        **config.get("OPTIONS", {}),
        "application_name": DB_APPLICATION_NAME,
        "connect_timeout": DB_CONNECT_TIMEOUT,
        **session_options,
        "pool": {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=min_size),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=max_size),
            "timeout": DB_POOL_TIMEOUT,
        },
    }
    # The pool checks a connection before handing it out: after a server restart a stale connection is
    # replaced instead of failing the request that drew it.
    config["CONN_HEALTH_CHECKS"] = True
    config["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=None)}
    # Transaction pooling hands each transaction a different server connection: a named (server-side)
    # cursor would outlive its transaction's connection.
    config["DISABLE_SERVER_SIDE_CURSORS"] = DB_BEHIND_PGBOUNCER
    return config


# A streaming replica for analytics and read-only admin pages (its_camera.db.routers): optional.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")


def databases_for(environment: str) -> dict[str, dict]:
    databases = {"default": database_settings(DATABASE_URL, environment=environment)}
    if REPLICA_DATABASE_URL:
        databases["replica"] = database_settings(REPLICA_DATABASE_URL, environment=environment)
        databases["replica"]["TEST"] = {"MIRROR": "default"}
    return databases


DATABASES = databases_for(DEPLOY_ENVIRONMENT)
DATABASE_ROUTERS = ["its_camera.db.routers.ReadReplicaRouter"]
# Migrations fail fast rather than queue for a lock behind live traffic (see docs/migrations.md).
MIGRATION_LOCK_TIMEOUT_MS = env.int("MIGRATION_LOCK_TIMEOUT_MS", default=5_000)
MIGRATION_STATEMENT_TIMEOUT_MS = env.int("MIGRATION_STATEMENT_TIMEOUT_MS", default=600_000)
POSTGRES_EXTRA_DB_BACKEND_BASE = "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -----------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True  # jobs record their outcome in PostgreSQL, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Beat jobs (its_camera.jobs, docs/jobs.md) -------------------------------------------------
# A job that has not succeeded within this many times its beat schedule (and at least the minimum) is overdue.
JOB_OVERDUE_MULTIPLE = env.float("JOB_OVERDUE_MULTIPLE", default=3.0)
JOB_OVERDUE_MIN_SECONDS = env.int("JOB_OVERDUE_MIN_SECONDS", default=120)
JOB_RUN_RETENTION_DAYS = env.int("JOB_RUN_RETENTION_DAYS", default=30)  # job history kept in job_runs

# --- API ------------------------------------------------------------------------------------
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=60)
NINJA_PAGINATION_PER_PAGE = env.int("API_PAGE_SIZE", default=100)
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=1000)
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=2.0)
# Requests per second per API key on the ingest endpoints (0: no limit); counted in Redis.
API_INGEST_RATE_LIMIT_PER_SECOND = env.int("API_INGEST_RATE_LIMIT_PER_SECOND", default=50)
API_RATE_LIMIT_REDIS_TIMEOUT_SECONDS = env.float("API_RATE_LIMIT_REDIS_TIMEOUT_SECONDS", default=0.2)

# JSON from outside (its_camera/limits.py): nesting depth of any JSON document accepted (ingest bodies, query
# filters, cursors), and the size and depth of a camera's `config`.
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
CAMERA_CONFIG_MAX_DEPTH = env.int("CAMERA_CONFIG_MAX_DEPTH", default=8)
CAMERA_CONFIG_MAX_BYTES = env.int("CAMERA_CONFIG_MAX_BYTES", default=16 * 1024)
# Config keys shown unmasked besides cameras.credentials.SHOWN_KEYS (every other key shows ********).
CAMERA_CONFIG_SHOWN_KEYS = env.list("CAMERA_CONFIG_SHOWN_KEYS", default=[])
# Bodies under /api/ larger than this are refused before they are read unless the caller's key is valid
# (its_camera/body_limits.py); TELEMETRY_MAX_BODY_BYTES bounds the ingest endpoints, DATA_UPLOAD_MAX_MEMORY_SIZE
# (Django's, 2.5 MB) every other one.
API_UNAUTHENTICATED_BODY_BYTES = env.int("API_UNAUTHENTICATED_BODY_BYTES", default=64 * 1024)

# --- Cameras: offline alerts (cameras.tasks.raise_stale_camera_alerts, see docs/cameras.md) ---
CAMERA_OFFLINE_AFTER_SECONDS = env.int("CAMERA_OFFLINE_AFTER_SECONDS", default=300)  # silent this long: alert
CAMERA_ONLINE_WITHIN_SECONDS = env.int("CAMERA_ONLINE_WITHIN_SECONDS", default=60)  # seen this recently: back
CAMERA_OFFLINE_RECOVERY_SECONDS = env.int("CAMERA_OFFLINE_RECOVERY_SECONDS", default=300)  # back this long: resolve
CAMERA_ALERTS_BATCH_SIZE = env.int("CAMERA_ALERTS_BATCH_SIZE", default=1000)  # cameras per batch, 10 batches a run

# --- Telemetry (see docs/telemetry.md) --------------------------------------------------------
# A batch of up to BULK_INSERT_BATCH_SIZE frames is the intended size; past the hard limit (frames or
# body bytes) the API answers 413. Every batch is one transaction, whatever its size.
BULK_INSERT_BATCH_SIZE = env.int("BULK_INSERT_BATCH_SIZE", default=2000)
TELEMETRY_BATCH_HARD_LIMIT = env.int("TELEMETRY_BATCH_HARD_LIMIT", default=5 * BULK_INSERT_BATCH_SIZE)
TELEMETRY_MAX_BODY_BYTES = env.int("TELEMETRY_MAX_BODY_BYTES", default=32 * 1024 * 1024)
TELEMETRY_MAX_DETECTIONS_PER_FRAME = env.int("TELEMETRY_MAX_DETECTIONS_PER_FRAME", default=1000)
TELEMETRY_MAX_JSON_BYTES = env.int("TELEMETRY_MAX_JSON_BYTES", default=64 * 1024)  # per frame / per metric labels
# Telemetry timestamps accepted (its_camera/limits.py, docs/security.md): late rows up to this many days old, a
# camera clock this many minutes ahead; anything else is a 422, so no row lands where no partition can take it.
TELEMETRY_ACCEPT_PAST_DAYS = env.int("TELEMETRY_ACCEPT_PAST_DAYS", default=30)
TELEMETRY_ACCEPT_FUTURE_MINUTES = env.int("TELEMETRY_ACCEPT_FUTURE_MINUTES", default=15)
# Partition size per table: "hourly", "daily", "weekly" or "monthly"; boundaries at 00:00 UTC (docs/telemetry.md
# has the ingest-vs-partition-size curve these defaults come from).
TELEMETRY_PARTITION_SIZES = {
    "frame_metadata": env("TELEMETRY_FRAMES_PARTITION_SIZE", default="daily"),
    "detections": env("TELEMETRY_DETECTIONS_PARTITION_SIZE", default="daily"),
    "system_metrics": env("TELEMETRY_METRICS_PARTITION_SIZE", default="monthly"),
}
# How many partitions to keep ahead of the current one, per size (SPEC §4), and behind it.
TELEMETRY_PARTITIONS_AHEAD = {"hourly": 48, "daily": 14, "weekly": 4, "monthly": 6}
TELEMETRY_PARTITIONS_BEHIND = env.int("TELEMETRY_PARTITIONS_BEHIND", default=1)
TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS = env.int("TELEMETRY_IDEMPOTENCY_KEY_TTL_HOURS", default=24)
PSQLEXTRA_PARTITIONING_MANAGER = "telemetry.partitioning.manager"
# Storage tiers (docs/storage.md): a partition is hot until its range ended this long ago (late rows still
# arrive: camera clocks, retried batches), then the seal job seals it. Sealed partitions get, besides the
# parent's indexes, the lookups named here (telemetry.services.tiering.SEALED_INDEXES); no API query needs
# them, so none are built unless an operator asks.
TELEMETRY_LATE_ROW_GRACE_MINUTES = env.int("TELEMETRY_LATE_ROW_GRACE_MINUTES", default=120)
TELEMETRY_SEALED_INDEXES = {
    "frame_metadata": env.list("TELEMETRY_FRAMES_SEALED_INDEXES", default=[]),
    "detections": env.list("TELEMETRY_DETECTIONS_SEALED_INDEXES", default=[]),
    "system_metrics": env.list("TELEMETRY_METRICS_SEALED_INDEXES", default=[]),
}
# GET /api/v1/frames/export: the longest range one request streams (a camera-day at 30 fps is 2.6 M frames).
TELEMETRY_EXPORT_MAX_HOURS = env.int("TELEMETRY_EXPORT_MAX_HOURS", default=24)
TELEMETRY_SEAL_MAX_PARTITIONS_PER_RUN = env.int("TELEMETRY_SEAL_MAX_PARTITIONS_PER_RUN", default=8)

# --- Live events and metrics (see docs/live.md and docs/observability.md) ---------------------
LIVE_EVENTS_REDIS_URL = env("LIVE_EVENTS_REDIS_URL", default="")  # empty: REDIS_URL
LIVE_EVENTS_BUFFER_SIZE = env.int("LIVE_EVENTS_BUFFER_SIZE", default=10_000)  # replay buffer, events
LIVE_EVENTS_HEARTBEAT_SECONDS = env.float("LIVE_EVENTS_HEARTBEAT_SECONDS", default=15.0)  # idle-stream comment
LIVE_EVENTS_SUBSCRIBER_QUEUE_SIZE = env.int("LIVE_EVENTS_SUBSCRIBER_QUEUE_SIZE", default=1000)  # then dropped
# A stream is closed after this many seconds (0: never); the client reconnects with Last-Event-ID, losing nothing.
LIVE_EVENTS_MAX_STREAM_SECONDS = env.float("LIVE_EVENTS_MAX_STREAM_SECONDS", default=3600.0)
LIVE_EVENTS_CLIENT_RETRY_MS = env.int("LIVE_EVENTS_CLIENT_RETRY_MS", default=3000)  # SSE `retry:` for clients
LIVE_EVENTS_REDIS_TIMEOUT_SECONDS = env.float("LIVE_EVENTS_REDIS_TIMEOUT_SECONDS", default=1.0)
LIVE_EVENTS_REDIS_PING_SECONDS = env.float("LIVE_EVENTS_REDIS_PING_SECONDS", default=10.0)
LIVE_EVENTS_RETRY_AFTER_SECONDS = env.float("LIVE_EVENTS_RETRY_AFTER_SECONDS", default=5.0)  # publisher breaker
LIVE_EVENTS_ALERTS_PER_CHANGE = env.int("LIVE_EVENTS_ALERTS_PER_CHANGE", default=1000)
LIVE_STATUS_SWEEP_BATCH_SIZE = env.int("LIVE_STATUS_SWEEP_BATCH_SIZE", default=2000)
LIVE_STATUS_SWEEP_MAX_BATCHES = env.int("LIVE_STATUS_SWEEP_MAX_BATCHES", default=10)
CELERY_IMPORTS = ["cameras.status_events"]  # the live status beat task lives beside the events it publishes
# GET /metrics answers these client networks, or anyone with `Authorization: Bearer <METRICS_BEARER_TOKEN>`.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN", default="")

# --- Import and export (django-import-export; see docs/operations.md) ----------------------------
IMPORT_EXPORT_FORMATS = [base_formats.CSV, base_formats.XLSX]
IMPORT_EXPORT_USE_TRANSACTIONS = True  # a file with a bad row writes nothing
IMPORT_EXPORT_SKIP_ADMIN_LOG = True  # one log entry per imported row would double the import's writes

# --- Camera map (see docs/operations.md): tiles are optional; without them the map is a coordinate canvas.
MAP_TILE_URL = env("MAP_TILE_URL", default="")  # e.g. https://tiles.internal/{z}/{x}/{y}.png
MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", default="")

# --- Notifications (see docs/operations.md) -----------------------------------------------------
# Email goes through Django's email backend: SMTP by default, configured by the standard settings.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="its-camera@localhost")
NOTIFICATIONS_ADMIN_BASE_URL = env(
    "NOTIFICATIONS_ADMIN_BASE_URL", default=""
)  # links in messages, e.g. https://ops.example
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=30.0)  # then x4 each time
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=3600.0)
NOTIFICATIONS_SEND_LEASE_SECONDS = env.int("NOTIFICATIONS_SEND_LEASE_SECONDS", default=300)  # a worker's claim
NOTIFICATIONS_PENDING_GRACE = env.int("NOTIFICATIONS_PENDING_GRACE", default=60)  # then the beat sweep sends it
NOTIFICATIONS_BATCH_SIZE = env.int("NOTIFICATIONS_BATCH_SIZE", default=500)  # reminders / due rows per beat run

# --- Internationalisation and time -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# "text": `2026-11-30 03:24:25 INFO    cameras.api [3f2a…] message`; "json": one JSON object per line for log
# shippers (its_camera/logs.py). Every line carries the request id, also in the Celery tasks a request queued.
LOG_FORMAT = env("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "its_camera.logs.RequestIdFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S",
        },
        "json": {"()": "its_camera.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "psycopg.pool": {"level": "WARNING"},
    },
}
