"""Refuse what must not happen to a customer: changes while restricted, people erased on request.

The rules behind them belong to privacy, which sits above the apps that collect data (ingest,
events) and so cannot be imported by them. Privacy registers its identity block here in its
``AppConfig.ready()``; importers and event collection ask this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from kequn.customers.models import Customer

# A normalised identity key: (kind, system, value), as customers.identities makes them.
IdentityKey = tuple[str, str, str]


class ProcessingRestrictedError(ValidationError):
    """A change to a customer whose processing is restricted on a data-subject request."""


def check_processing_allowed(customer: Customer) -> None:
    """Raise a clear error when the customer's processing is restricted."""
    if customer.pk and Customer.objects.filter(pk=customer.pk, processing_restricted=True).exists():
        raise ProcessingRestrictedError(
            _(
                "customer #%(id)s is restricted from processing on a data-subject request: "
                "lift the restriction first"
            )
            % {"id": customer.pk}
        )


@dataclass(frozen=True)
class IdentityBlock:
    """One registered reason why identities may not be stored again."""

    find: Callable[[Iterable[IdentityKey]], dict[IdentityKey, int | None]]
    describe: Callable[[int | None], str]


_blocks: list[IdentityBlock] = []


def register_identity_block(
    find: Callable[[Iterable[IdentityKey]], dict[IdentityKey, int | None]],
    describe: Callable[[int | None], str],
) -> None:
    """Register a check that names the blocked keys (with a reference) among normalised keys."""
    block = IdentityBlock(find=find, describe=describe)
    if block not in _blocks:
        _blocks.append(block)


def find_blocked_identities(keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
    """Return the blocked keys among normalised identity keys, each with its one-line reason."""
    keys = set(keys)
    found: dict[IdentityKey, str] = {}
    for block in _blocks:
        if not keys:
            break
        for key, ref in block.find(keys).items():
            found[key] = block.describe(ref)
        keys -= found.keys()
    return found
