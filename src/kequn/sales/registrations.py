"""What the sales app registers with the layers below it (called from SalesConfig.ready())."""

from __future__ import annotations

from kequn.journeys.registry import register_step
from kequn.sales.steps import CONFIG_FIELDS, LABEL, check_step_config, run_create_task_step
from kequn.security import roles
from kequn.security.permissions import register_role_permissions

# README "Roles": reps work their own accounts, deals, activities and tasks (a team's manager
# the team's); analysts read everything; marketing reads the pipeline for campaign sources.
SALES_GRANTS: dict[str, list[str]] = {
    roles.SALES: [
        "sales.view_*",
        "sales.add_accountprofile",
        "sales.change_accountprofile",
        "sales.*_buyingrole",
        "sales.add_deal",
        "sales.change_deal",
        "sales.*_dealproduct",
        "sales.add_activity",
        "sales.change_activity",
        "sales.*_task",
    ],
    roles.ANALYST: ["sales.view_*"],
    roles.MARKETING: ["sales.view_pipeline", "sales.view_stage", "sales.view_deal"],
}


def register_all() -> None:
    """Register role permissions and the journeys' "create a sales task" step."""
    register_role_permissions(SALES_GRANTS)
    register_step(
        "sales.create_task",
        LABEL,
        run_create_task_step,
        config_fields=CONFIG_FIELDS,
        check_config=check_step_config,
    )
