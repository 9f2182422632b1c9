"""One settings module, driven by the environment. Every gateway knob is ``GATEWAY_*`` with a
default here, read through ``django.conf.settings`` so tests can override it."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import django_stubs_ext

from proxy_project.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    persistent_secret,
)

# Django's generic classes (ModelAdmin[Model], ModelForm[Model]...) subscriptable at run time,
# as their type stubs declare them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("GATEWAY_DATA_DIR") or BASE_DIR / "var")
(DATA_DIR / "static").mkdir(parents=True, exist_ok=True)

SECRET_KEY = persistent_secret("SECRET_KEY", DATA_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "apps.core",
    "apps.teams",
    "apps.keys",
    "apps.routing",
    "apps.usage",
    "apps.gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "proxy_project.urls"
ASGI_APPLICATION = "proxy_project.asgi.application"

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

_default_db = f"sqlite:///{DATA_DIR / 'gateway.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or _default_db, conn_max_age=0, conn_health_checks=False
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's own psycopg 3 pool: connections are reused across the thread-pool workers that
    # run ORM calls for async code.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 2),
        "max_size": env_int("DATABASE_POOL_MAX", 20),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0),
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", None)}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# The management API (/key/*, /team/*, ...): the master key, a virtual key or an admin session;
# errors in the API's own shape; JSON only (no browsable HTML).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.keys.api.authentication.GatewayKeyAuthentication",
        "apps.keys.api.authentication.AdminSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.teams.api.permissions.IsActor"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway management API",
    "DESCRIPTION": "LiteLLM-compatible key, team, organization, user, customer, budget and "
    "model management. Authenticate with 'Authorization: Bearer <master key or virtual key>'.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# GATEWAY_LOG_FORMAT=json: one JSON object per line; every record carries the request id of the
# call being served. GATEWAY_ACCESS_LOG=1: one line per call (logger ``gateway.access``).
GATEWAY_LOG_FORMAT = env_str("GATEWAY_LOG_FORMAT", "text")
GATEWAY_ACCESS_LOG = env_bool("GATEWAY_ACCESS_LOG", False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if GATEWAY_LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Gateway ---------------------------------------------------------------------------------
# Master key: full access to /v1 and the management API. ``general_settings.master_key`` in an
# imported config is used when this is unset.
PROXY_MASTER_KEY = env_str("PROXY_MASTER_KEY") or env_str("LITELLM_MASTER_KEY")
# Key for upstream credentials at rest (any string; a Fernet key is derived from it). Falls back
# to SECRET_KEY, which is generated and kept in DATA_DIR on first run.
PROXY_ENCRYPTION_KEY = env_str("PROXY_ENCRYPTION_KEY") or env_str("LITELLM_SALT_KEY")
# Pepper for virtual-key digests: separate from SECRET_KEY so rotating one does not void the other.
GATEWAY_KEY_PEPPER = persistent_secret("GATEWAY_KEY_PEPPER", DATA_DIR / "key_pepper")
REDIS_URL = env_str("REDIS_URL")
# Put in front of every Redis key and channel name, so gateways sharing a Redis stay apart.
GATEWAY_REDIS_PREFIX = env_str("GATEWAY_REDIS_PREFIX", "gateway:")
# Connect and read timeout of Redis calls; past it the gateway falls back to local state.
GATEWAY_REDIS_TIMEOUT_S = env_float("GATEWAY_REDIS_TIMEOUT_S", 0.5)

GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 32 * 1024 * 1024)
GATEWAY_DEFAULT_TIMEOUT_S = env_float("GATEWAY_DEFAULT_TIMEOUT_S", 600.0)
GATEWAY_CONNECT_TIMEOUT_S = env_float("GATEWAY_CONNECT_TIMEOUT_S", 10.0)
# Upstream connections: at most this many at once to one origin (scheme, host, port); a call
# finding them all busy waits up to the queue timeout, then fails with 503.
GATEWAY_UPSTREAM_CONNECTIONS_PER_ORIGIN = env_int("GATEWAY_UPSTREAM_CONNECTIONS_PER_ORIGIN", 1024)
GATEWAY_UPSTREAM_QUEUE_TIMEOUT_S = env_float("GATEWAY_UPSTREAM_QUEUE_TIMEOUT_S", 10.0)
# Largest non-stream upstream answer (after decompression) the gateway reads.
GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES = env_int(
    "GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES", 64 * 1024 * 1024
)
# Retries with no other deployment to go to: the first backoff (doubled each time, at most 8 s,
# with jitter), and the longest upstream retry-after honoured (beyond it the error goes back
# to the client at once, retry-after included). LiteLLM's values.
GATEWAY_RETRY_BACKOFF_S = env_float("GATEWAY_RETRY_BACKOFF_S", 0.5)
GATEWAY_RETRY_MAX_WAIT_S = env_float("GATEWAY_RETRY_MAX_WAIT_S", 60.0)
# How long cached keys and the routing table live before a reload even without an invalidation
# message, and how often each process polls the change marker when no Redis is configured.
GATEWAY_CACHE_TTL_S = env_float("GATEWAY_CACHE_TTL_S", 300.0)
GATEWAY_CHANGE_POLL_S = env_float("GATEWAY_CHANGE_POLL_S", 2.0)
GATEWAY_KEY_CACHE_SIZE = env_int("GATEWAY_KEY_CACHE_SIZE", 100_000)
# How often each process looks for budgets whose period ended (budget_duration) and resets them.
GATEWAY_BUDGET_RESET_S = env_float("GATEWAY_BUDGET_RESET_S", 5.0)
# Without Redis: how often each process reads the spend other instances recorded.
GATEWAY_SPEND_SYNC_S = env_float("GATEWAY_SPEND_SYNC_S", 1.0)
# Usage writer: rows are flushed in batches of this size or after this many seconds.
GATEWAY_USAGE_BATCH = env_int("GATEWAY_USAGE_BATCH", 500)
GATEWAY_USAGE_FLUSH_S = env_float("GATEWAY_USAGE_FLUSH_S", 0.5)
GATEWAY_USAGE_MAX_BUFFER = env_int("GATEWAY_USAGE_MAX_BUFFER", 1_000_000)
# Usage rows older than this many days are dropped (whole monthly partitions on PostgreSQL);
# 0 keeps them forever. Daily rollups are kept.
USAGE_RETENTION_DAYS = env_int("USAGE_RETENTION_DAYS", 0)
# /metrics answers only with the master key as bearer token (it shows spend and budgets).
GATEWAY_METRICS_REQUIRE_AUTH = env_bool("GATEWAY_METRICS_REQUIRE_AUTH", False)
# Webhook callbacks (success_callback / failure_callback): the HMAC key events are signed with
# (an entry's own "secret" wins), and how many events may wait before the oldest are dropped.
GATEWAY_CALLBACK_SECRET = env_str("GATEWAY_CALLBACK_SECRET", "")
GATEWAY_CALLBACK_QUEUE = env_int("GATEWAY_CALLBACK_QUEUE", 10_000)
# Keep each call's request and response (redacted) on its usage row: for every call, or only
# for keys whose metadata has store_prompts_in_spend_logs: true. Cut to this many characters.
GATEWAY_STORE_PROMPTS = env_bool("GATEWAY_STORE_PROMPTS", False)
GATEWAY_STORED_BODY_BYTES = env_int("GATEWAY_STORED_BODY_BYTES", 64 * 1024)
# Monthly usage partitions created ahead of time, besides the current month's.
USAGE_PARTITIONS_AHEAD = env_int("USAGE_PARTITIONS_AHEAD", 2)
# Longest time the request loop may wait for the GIL held by a writer or loader thread.
GATEWAY_SWITCH_INTERVAL_S = env_float("GATEWAY_SWITCH_INTERVAL_S", 0.001)
# Global default for dropping parameters a provider does not accept (litellm_settings.drop_params).
GATEWAY_DROP_PARAMS = env_bool("GATEWAY_DROP_PARAMS", False)
