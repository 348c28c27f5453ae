"""Listeners told when orders are written (loyalty earns points on them).

Commerce sits below the apps that react to orders, so it cannot import them. An app above
registers a listener from its ``AppConfig.ready()``; every writer of orders (file imports,
the API) calls :func:`notify_orders_written` with the orders it inserted or changed, inside its
own transaction, so a listener's writes commit or roll back with the orders. A listener must
be idempotent: the same order may be written (re-imported) again.

A writer of many batches (a file import) runs them inside :func:`writing_many_orders`; a
listener may then leave per-customer work to the run's end (see :func:`is_writing_many_orders`),
where the finishers registered with :func:`register_run_finisher` do it once per customer
instead of once per batch. A finisher must also cope with work left by a run that died.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from kequn.commerce.models import Order
from kequn.security.actors import Actor

# Called with the written orders as the writer holds them (saved: with their ids), so a
# listener need not read them again: re-reading a batch cost loyalty a sixth of its work.
OrderListener = Callable[[list[Order], Actor], None]
_listeners: dict[str, OrderListener] = {}
RunFinisher = Callable[[Actor], object]  # what it returns is not used
_finishers: dict[str, RunFinisher] = {}
_writing_many: ContextVar[bool] = ContextVar("kequn_writing_many_orders", default=False)


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


def register_run_finisher(name: str, finisher: RunFinisher) -> None:
    """Call `finisher(by)` at the end of every run of many order writes (a name again replaces it)."""
    _finishers[name] = finisher


def is_writing_many_orders() -> bool:
    """Return whether the current writes are batches of a run whose finishers will follow."""
    return _writing_many.get()


@contextmanager
def writing_many_orders(*, by: Actor) -> Iterator[None]:
    """Group a writer's batches into one run; call the finishers when it ends without error.

    A run that fails leaves its deferred work to the next run's finishers or the worker.
    """
    token = _writing_many.set(True)
    try:
        yield
    finally:
        _writing_many.reset(token)
    for finisher in list(_finishers.values()):
        finisher(by)
