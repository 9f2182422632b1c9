"""/model/new, /model/update, /model/delete: deployments managed over the API by proxy admins.
Reads (/model/info, /v1/model/info) are served by the gateway itself (``apps.gateway.info``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.schema import doc
from apps.core.errors import NotFound
from apps.routing import services
from apps.routing.models import Deployment
from apps.teams.api.common import label, validated
from apps.teams.api.permissions import IsProxyAdmin

TAGS = ["model management"]
_SECRET_WORDS = ("key", "secret", "token", "credential", "password")


class NewModelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model_name = serializers.CharField(max_length=255)
    litellm_params = serializers.DictField()
    model_info = serializers.DictField(required=False, allow_null=True)

    def validate_litellm_params(self, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("model"), str) or not value["model"]:
            raise ValidationError("litellm_params.model is required, e.g. 'openai/gpt-4o'.")
        return value


class UpdateModelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model_name = serializers.CharField(max_length=255, required=False, allow_null=True)
    litellm_params = serializers.DictField(required=False, allow_null=True)
    model_info = serializers.DictField()

    def validate_model_info(self, value: dict[str, Any]) -> dict[str, Any]:
        if not value.get("id"):
            raise ValidationError("model_info.id names the deployment to update.")
        return value


class ModelIdSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(max_length=100)


def deployment_data(dep: Deployment) -> dict[str, Any]:
    """The deployment without any credential."""
    params: dict[str, Any] = {"model": f"{dep.provider}/{dep.model}"}
    for name in ("api_base", "api_version", "region_name"):
        if getattr(dep, name):
            params[name] = getattr(dep, name)
    for name in ("rpm", "tpm", "timeout", "stream_timeout", "order"):
        if getattr(dep, name) is not None:
            params[name] = getattr(dep, name)
    params["weight"] = dep.weight
    for name, value in (dep.extra_params or {}).items():
        if not any(word in name.lower() for word in _SECRET_WORDS):
            params[name] = value
    return {
        "model_name": dep.group.name,
        "litellm_params": params,
        "model_info": {"id": dep.model_id, **(dep.model_info or {})},
    }


def _deployment(model_id: str, param: str) -> Deployment:
    dep = Deployment.objects.select_related("group").filter(model_id=model_id).first()
    if dep is None:
        raise NotFound(f"Model '{model_id}' not found.", param=param)
    return dep


@doc(tags=TAGS, request=NewModelSerializer)
@api_view(["POST"])
@permission_classes([IsProxyAdmin])
def model_new(request: Request) -> Response:
    data = validated(request, NewModelSerializer)
    try:
        dep = services.model_create(entry=data, actor=label(request))
    except services.DeploymentInvalid as exc:
        raise ValidationError({"litellm_params": str(exc)}) from None
    return Response(deployment_data(dep))


@doc(tags=TAGS, request=UpdateModelSerializer)
@api_view(["POST", "PATCH"])
@permission_classes([IsProxyAdmin])
def model_update(request: Request) -> Response:
    data = validated(request, UpdateModelSerializer)
    dep = _deployment(str(data["model_info"]["id"]), "model_info.id")
    try:
        dep = services.model_update(dep=dep, entry=data, actor=label(request))
    except services.DeploymentInvalid as exc:
        raise ValidationError({"litellm_params": str(exc)}) from None
    return Response(deployment_data(dep))


@doc(tags=TAGS, request=ModelIdSerializer)
@api_view(["POST", "DELETE"])
@permission_classes([IsProxyAdmin])
def model_delete(request: Request) -> Response:
    data = validated(request, ModelIdSerializer)
    dep = _deployment(data["id"], "id")
    services.model_delete(dep=dep, actor=label(request))
    return Response({"message": f"Model '{data['id']}' deleted.", "id": data["id"]})
