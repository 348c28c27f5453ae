"""The roles Kequn ships with; each is a Django group of the same name."""

from __future__ import annotations

ADMINISTRATOR = "administrator"
MARKETING = "marketing"
SALES = "sales"
SERVICE = "service"
ANALYST = "analyst"
AUDITOR = "auditor"

ROLES = [ADMINISTRATOR, MARKETING, SALES, SERVICE, ANALYST, AUDITOR]
