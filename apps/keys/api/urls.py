from __future__ import annotations

from django.urls import path

from apps.keys.api import keys, teams, users

urlpatterns = [
    path("key/generate", keys.key_generate),
    path("key/update", keys.key_update),
    path("key/info", keys.key_info),
    path("key/list", keys.key_list),
    path("key/delete", keys.key_delete),
    path("key/block", keys.key_block),
    path("key/unblock", keys.key_unblock),
    path("key/regenerate", keys.key_regenerate),
    path("key/<str:key>/regenerate", keys.key_regenerate),
    path("team/new", teams.team_new),
    path("team/update", teams.team_update),
    path("team/delete", teams.team_delete),
    path("team/info", teams.team_info),
    path("team/list", teams.team_list),
    path("team/block", teams.team_block),
    path("team/unblock", teams.team_unblock),
    path("team/member_add", teams.team_member_add),
    path("team/member_delete", teams.team_member_delete),
    path("team/model/add", teams.team_model_add),
    path("team/model/delete", teams.team_model_delete),
    path("user/new", users.user_new),
    path("user/update", users.user_update),
    path("user/info", users.user_info),
    path("user/list", users.user_list),
    path("user/delete", users.user_delete),
]
