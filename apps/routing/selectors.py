"""The routing table: model groups and their deployments, held in memory per process.

Loaded once (one query), then served without touching the database; reloaded when a deployment
or group changes (``apps.core.changes``) or after ``GATEWAY_CACHE_TTL_S``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from apps.core import changes
from apps.core.cache import GenerationCache
from apps.core.conf import conf
from apps.core.db import db_task
from apps.core.errors import ModelNotFound
from apps.core.models import ProxyConfig
from apps.core.secrets import SecretError, resolve, resolve_value
from apps.keys.auth import Principal
from apps.providers.registry import UnknownProvider, get_provider
from apps.providers.schemas import Target
from apps.routing.models import Deployment, ModelGroup
from apps.routing.policy import RouterSettings, SettingsError, router_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    target: Target
    weight: int = 1
    order: int = 0
    rpm: int | None = None
    tpm: int | None = None
    prices: PriceOverride = PriceOverride()
    # The model whose list price applies (model_info.base_model, e.g. for an Azure deployment
    # named 'my-gpt4o' serving gpt-4o); the upstream model when unset.
    price_model: str = ""
    # The deployment's region ("eu", "us"; litellm_params.region_name), for end users held to
    # one region.
    region: str = ""
    # The prompt size the deployment accepts (model_info.max_input_tokens), when known.
    max_input_tokens: int | None = None
    # Its weight in simple-shuffle within its group (see shuffle_weights), set at load.
    share: float | None = None


@dataclass(frozen=True, slots=True)
class ClientCredentialPolicy:
    """What provider credentials a group's clients may send with a request (none by
    default); ``api_base_hosts`` are host names or fnmatch patterns."""

    allow_api_key: bool = False
    allow_api_base: bool = False
    api_base_hosts: tuple[str, ...] = ()


def shuffle_weights(candidates: Sequence[Candidate]) -> list[float]:
    """LiteLLM's simple-shuffle weights: ``weight`` when any deployment of the group sets one,
    else rpm, else tpm (when every deployment has it), else equal."""
    if any(c.weight != 1 for c in candidates):
        return [float(c.weight) for c in candidates]
    if all(c.rpm for c in candidates):
        return [float(c.rpm or 1) for c in candidates]
    if all(c.tpm for c in candidates):
        return [float(c.tpm or 1) for c in candidates]
    return [1.0] * len(candidates)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    candidates: tuple[Candidate, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    # Access groups (model_info.access_groups of the group or of its deployments) a key may
    # name in its allowed models instead of the group itself.
    access_groups: frozenset[str] = frozenset()
    client_credentials: ClientCredentialPolicy = ClientCredentialPolicy()
    # The router settings with this group's own on top.
    router: RouterSettings = field(default_factory=RouterSettings)


@dataclass(slots=True)
class RoutingTable:
    groups: dict[str, Group]
    wildcards: list[Group]
    router: RouterSettings = field(default_factory=RouterSettings)

    def resolve(self, model: str) -> tuple[Group, str | None] | None:
        """The group serving ``model`` and, for wildcard groups, the part matched by '*'."""
        group = self.groups.get(model)
        if group is not None:
            return group, None
        for wild in self.wildcards:
            if fnmatch.fnmatchcase(model, wild.name):
                prefix = wild.name.split("*", 1)[0]
                return wild, model[len(prefix) :]
        return None


def _dec(value: Decimal | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


# Parameters that LiteLLM configs may give as a path to a JSON file instead of the JSON itself.
_FILE_PARAMS = ("vertex_credentials",)


def _read_credential_files(params: dict[str, Any]) -> None:
    for name in _FILE_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value and not value.lstrip().startswith("{"):
            path = Path(value).expanduser()
            if path.is_file():
                params[name] = path.read_text()


def _target_for(
    dep: Deployment, group_name: str, drop_default: bool, router: RouterSettings
) -> Target:
    provider = get_provider(dep.provider)
    api_key = resolve(dep.api_key)
    if not api_key:
        env_name = provider.api_key_env
        if env_name:
            api_key = resolve(f"os.environ/{env_name}")
    params: dict[str, Any] = {k: resolve_value(v) for k, v in (dep.extra_params or {}).items()}
    for name, stored in (dep.secret_params or {}).items():
        params[name] = resolve(stored) if isinstance(stored, str) else stored
    _read_credential_files(params)
    drop = params.pop("drop_params", None)
    additional = params.pop("additional_drop_params", None) or ()
    return Target(
        deployment_id=dep.model_id,
        provider=dep.provider,
        model=dep.model,
        api_base=resolve_value(dep.api_base) or None,
        api_key=api_key,
        api_version=resolve_value(dep.api_version) or None,
        timeout_s=dep.timeout or router.timeout or conf.GATEWAY_DEFAULT_TIMEOUT_S,
        stream_timeout_s=dep.stream_timeout or router.stream_timeout,
        headers={str(k): str(resolve_value(v)) for k, v in (dep.headers or {}).items()},
        params=params,
        drop_params=bool(drop) if drop is not None else drop_default,
        additional_drop_params=tuple(additional),
        model_group=group_name,
    )


def _base_model(dep: Deployment) -> str:
    base = (dep.model_info or {}).get("base_model")
    if not isinstance(base, str) or not base:
        return dep.model
    provider, sep, rest = base.partition("/")
    return rest if sep and provider == dep.provider else base


def _max_input_tokens(*infos: dict[str, Any] | None) -> int | None:
    for info in infos:
        value = (info or {}).get("max_input_tokens")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


def _global_settings() -> tuple[bool, RouterSettings]:
    """(drop_params default, router settings) of the imported config."""
    config = ProxyConfig.objects.filter(pk=1).first()
    litellm = (config.litellm_settings if config else None) or {}
    drop = bool(litellm["drop_params"]) if "drop_params" in litellm else None
    try:
        router = router_settings(litellm, (config.router_settings if config else None) or {})
    except SettingsError as exc:
        logger.error("router settings ignored: %s", exc)
        router = RouterSettings()
    return (bool(conf.GATEWAY_DROP_PARAMS) if drop is None else drop), router


def global_drop_params() -> bool:
    return _global_settings()[0]


def _group_router(grp: ModelGroup, router: RouterSettings) -> RouterSettings:
    try:
        return router.for_group(grp.name, grp.settings or {})
    except SettingsError as exc:
        logger.error("settings of model group %s ignored: %s", grp.name, exc)
        return router


def _access_groups(model_info: Any) -> set[str]:
    groups = model_info.get("access_groups") if isinstance(model_info, dict) else None
    return {str(g) for g in groups} if isinstance(groups, list) else set()


def load_table() -> RoutingTable:
    drop_default, router = _global_settings()
    group_routers = {
        grp.pk: _group_router(grp, router) for grp in ModelGroup.objects.filter(enabled=True)
    }
    groups: dict[str, Group] = {}
    wildcards: list[Group] = []
    deployments = (
        Deployment.objects.filter(enabled=True, group__enabled=True)
        .select_related("group")
        .order_by("group__name", "order", "pk")
    )
    by_group: dict[int, list[Candidate]] = {}
    access: dict[int, set[str]] = {}
    for dep in deployments:
        access.setdefault(dep.group_id, set()).update(_access_groups(dep.model_info))
        group_router = group_routers.get(dep.group_id, router)
        try:
            target = _target_for(dep, dep.group.name, drop_default, group_router)
        except (UnknownProvider, SecretError) as exc:
            logger.error("deployment %s skipped: %s", dep.model_id, exc)
            continue
        by_group.setdefault(dep.group_id, []).append(
            Candidate(
                target=target,
                weight=max(1, dep.weight),
                order=dep.order or 0,
                rpm=dep.rpm,
                tpm=dep.tpm,
                prices=PriceOverride(
                    _dec(dep.input_cost_per_token),
                    _dec(dep.output_cost_per_token),
                    _dec(dep.cache_read_input_token_cost),
                ),
                price_model=_base_model(dep),
                region=str(getattr(dep, "region_name", "") or ""),
                max_input_tokens=_max_input_tokens(dep.model_info, dep.group.model_info),
            )
        )
    for grp in ModelGroup.objects.filter(enabled=True):
        members = by_group.get(grp.pk, [])
        shares = shuffle_weights(members)
        group = Group(
            name=grp.name,
            candidates=tuple(
                dataclasses.replace(c, share=w) for c, w in zip(members, shares, strict=True)
            ),
            settings=dict(grp.settings or {}),
            model_info=dict(grp.model_info or {}),
            access_groups=frozenset(access.get(grp.pk, set()) | _access_groups(grp.model_info)),
            client_credentials=ClientCredentialPolicy(
                allow_api_key=grp.allow_client_api_key,
                allow_api_base=grp.allow_client_api_base,
                api_base_hosts=tuple(
                    str(h).strip().lower()
                    for h in grp.client_api_base_hosts or ()
                    if str(h).strip()
                ),
            ),
            router=group_routers.get(grp.pk, router),
        )
        if not group.candidates:
            continue
        if "*" in grp.name:
            wildcards.append(group)
        else:
            groups[grp.name] = group
    # Most specific pattern first: 'openai/gpt-4*' wins over 'openai/*' over '*'.
    wildcards.sort(key=lambda g: len(g.name.replace("*", "")), reverse=True)
    return RoutingTable(groups=groups, wildcards=wildcards, router=router)


_aload_table = db_task(load_table)
# One entry (the table), reloaded after GATEWAY_CACHE_TTL_S or a change.
_tables: GenerationCache[None, RoutingTable] = GenerationCache(
    ttl=lambda _table: float(conf.GATEWAY_CACHE_TTL_S)
)


def clear_cache() -> None:
    _tables.clear()


changes.subscribe(changes.TOPIC_ROUTING, clear_cache)
changes.subscribe(changes.TOPIC_CONFIG, clear_cache)


async def routing_table() -> RoutingTable:
    return await _tables.get_or_load(None, _aload_table)


def _resolve_for(
    table: RoutingTable, principal: Principal, model: str
) -> tuple[Group, str | None] | None:
    """``table.resolve(model)`` once ``principal`` is known to be allowed the model (its
    group's name, an access group of it, or the name asked for). Raises PermissionDenied."""
    found = table.resolve(model)
    if found is None:
        if not principal.may_use(model):
            principal.check_model(model)
        return None
    group = found[0]
    if not principal.may_use(group.name, group.access_groups) and not principal.may_use(
        model, group.access_groups
    ):
        principal.check_model(model)
    return found


async def check_access(*, principal: Principal, model: str) -> None:
    """Raise PermissionDenied when ``principal`` may not call ``model`` (no query once warm):
    checked before a call's limits are taken, so a refused model costs no request."""
    _resolve_for(await routing_table(), principal, model)


def resolve_group(
    table: RoutingTable, principal: Principal, model: str, *, check: bool = True
) -> tuple[Group, list[Candidate]]:
    """The group serving ``model`` (after the caller's model aliases) and its deployments (a
    wildcard group's with the matched part filled into their upstream model), in
    configuration order.

    Raises ModelNotFound, or PermissionDenied when ``check`` and the key may not use the group.
    """
    model = principal.aliases.get(model, model)
    found = _resolve_for(table, principal, model) if check else table.resolve(model)
    if found is None:
        raise ModelNotFound(
            f"The model '{model}' does not exist or is not served by this gateway.",
            param="model",
        )
    group, suffix = found
    if suffix is None:
        return group, list(group.candidates)
    return group, [
        dataclasses.replace(
            c,
            target=dataclasses.replace(
                c.target,
                model=c.target.model.replace("*", suffix)
                if "*" in c.target.model
                else c.target.model,
                model_group=model,
            ),
        )
        for c in group.candidates
    ]


async def candidates_for(*, principal: Principal, model: str) -> tuple[Group, list[Candidate]]:
    """The group for ``model`` and its deployments. Raises ModelNotFound / PermissionDenied."""
    return resolve_group(await routing_table(), principal, model)


async def visible_groups(principal: Principal) -> list[Group]:
    table = await routing_table()
    return [
        g for name, g in sorted(table.groups.items()) if principal.may_use(name, g.access_groups)
    ] + [g for g in table.wildcards if principal.may_use(g.name, g.access_groups)]
