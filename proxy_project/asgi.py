"""ASGI entry point (uvicorn, daphne). Channels' ProtocolTypeRouter dispatches by protocol; the
gateway app serves /v1 and health paths itself and hands the rest (admin, management API) to
Django."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proxy_project.settings")

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django_asgi = get_asgi_application()

from apps.gateway.app import GatewayApp  # noqa: E402

gateway = GatewayApp(django_asgi)

application = ProtocolTypeRouter({"http": gateway, "lifespan": gateway})
