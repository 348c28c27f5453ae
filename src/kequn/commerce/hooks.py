"""Listeners told when orders are written (loyalty earns points on them).

Commerce sits below the apps that react to orders, so it cannot import them. An app above
registers a listener from its ``AppConfig.ready()``; every writer of orders (file imports,
the API) calls :func:`notify_orders_written` with the orders it inserted or changed, inside its
own transaction, so a listener's writes commit or roll back with the orders. A listener must
be idempotent: the same order may be written (re-imported) again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kequn.commerce.models import Order
from kequn.security.actors import Actor

# Called with the written orders as the writer holds them (saved: with their ids), so a
# listener need not read them again: re-reading a batch cost loyalty a sixth of its work.
OrderListener = Callable[[list[Order], Actor], None]
_listeners: dict[str, OrderListener] = {}


def register_order_listener(name: str, listener: OrderListener) -> None:
    """Call `listener(orders, by)` whenever orders are written (a name again replaces it)."""
    _listeners[name] = listener


def unregister_order_listener(name: str) -> OrderListener | None:
    """Remove a listener (tests, benchmarks); return it."""
    return _listeners.pop(name, None)


def notify_orders_written(orders: Iterable[Order], *, by: Actor) -> None:
    """Tell every listener which orders were inserted or changed (saved ones, each once)."""
    saved = sorted({o.pk: o for o in orders if o.pk}.values(), key=lambda o: o.pk)
    if not saved:
        return
    for listener in list(_listeners.values()):
        listener(saved, by)
