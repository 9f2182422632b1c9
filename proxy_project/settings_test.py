"""Settings for the test suite: PostgreSQL (as in production), data files in a temporary
folder, fixed secrets."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GATEWAY_DATA_DIR", tempfile.mkdtemp(prefix="gateway-test-"))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
)
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("GATEWAY_KEY_PEPPER", "test-pepper")
os.environ["PROXY_MASTER_KEY"] = "sk-test-master-key"
# Redis keys and channels of this run only: other gateways and test runs may share the server.
os.environ.setdefault("GATEWAY_REDIS_PREFIX", f"gwtest:{os.getpid()}:{os.urandom(4).hex()}:")

from proxy_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
GATEWAY_USAGE_FLUSH_S = 0.05
GATEWAY_CHANGE_POLL_S = 0.2
# Off unless a test turns them on: their queries would race other tests' table flushes.
GATEWAY_BUDGET_RESET_S = 0
GATEWAY_SPEND_SYNC_S = 0
# Tests about errors need no real waits before retries; the retry tests set their own.
GATEWAY_RETRY_BACKOFF_S = 0.02
GATEWAY_RETRY_MAX_WAIT_S = 1.0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# One test database per test run, so runs in parallel (several checkouts, or a developer
# and a watcher) never fight over it.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": os.environ.get("TEST_DB_NAME") or f"test_gateway_{os.getpid()}"
}
