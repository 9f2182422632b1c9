"""Settings read on the request path, cached as plain attributes.

``django.conf.settings`` is a lazy proxy: each attribute read goes through
``LazyObject.__getattribute__``, which showed in the hot-path profile. ``conf.NAME`` reads
``settings.NAME`` once and then is an ordinary attribute; ``override_settings`` (or any other
``setting_changed``) empties the cache, so tests keep working.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


class _CachedSettings:
    def __getattr__(self, name: str) -> Any:
        value = getattr(settings, name)
        setattr(self, name, value)
        return value

    def clear(self) -> None:
        self.__dict__.clear()


conf = _CachedSettings()


def _clear(**kwargs: Any) -> None:
    conf.clear()


setting_changed.connect(_clear)
