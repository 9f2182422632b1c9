from __future__ import annotations

from django.urls import path

from apps.teams.api import budgets, customers, organizations

urlpatterns = [
    path("organization/new", organizations.organization_new),
    path("organization/update", organizations.organization_update),
    path("organization/delete", organizations.organization_delete),
    path("organization/info", organizations.organization_info),
    path("organization/list", organizations.organization_list),
    path("organization/member_add", organizations.organization_member_add),
    path("budget/new", budgets.budget_new),
    path("budget/update", budgets.budget_update),
    path("budget/info", budgets.budget_info),
    path("budget/list", budgets.budget_list),
    path("budget/delete", budgets.budget_delete),
]
# End users are "customers" in LiteLLM's newer routes and "end users" in its older ones.
for prefix in ("customer", "end_user"):
    urlpatterns += [
        path(f"{prefix}/new", customers.customer_new),
        path(f"{prefix}/update", customers.customer_update),
        path(f"{prefix}/info", customers.customer_info),
        path(f"{prefix}/list", customers.customer_list),
        path(f"{prefix}/delete", customers.customer_delete),
        path(f"{prefix}/block", customers.customer_block),
        path(f"{prefix}/unblock", customers.customer_unblock),
    ]
