"""Every mutation's outcome, reported once, whichever door it came through.

The operations below are the mutations of both doors: GraphQL's fields and LAIN's REST
routes call the same functions, so counting here counts each door's mutations under the
same kind (GraphQL's field name). An operation that calls another (a proc deploy inside an
app deploy) is one mutation: only the outermost is reported. A retry answered from an
idempotency key runs nothing and reports nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, TypeVar

from resolvers.core.context import OpContext
from resolvers.core.errors import DomainError

__all__ = ["INTERNAL", "OK", "mutation"]

OK = "OK"
INTERNAL = "INTERNAL"  # not a domain error: a bug or an outage the resolver did not expect

P = ParamSpec("P")
R = TypeVar("R")

_inside_mutation: ContextVar[bool] = ContextVar("lain_console_inside_mutation", default=False)


def mutation(
    kind: str | Callable[[Mapping[str, Any]], str],
) -> Callable[
    [Callable[Concatenate[OpContext, P], Awaitable[R]]],
    Callable[Concatenate[OpContext, P], Awaitable[R]],
]:
    """Report the operation's outcome (OK or the domain error's code) to the services'
    observer. `kind` is a name, or computed from the keyword arguments (restart/stop/start
    are one function)."""

    def decorate(
        operation: Callable[Concatenate[OpContext, P], Awaitable[R]],
    ) -> Callable[Concatenate[OpContext, P], Awaitable[R]]:
        @functools.wraps(operation)
        async def reported(ctx: OpContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
            observer = ctx.services.mutation_observer
            if observer is None or _inside_mutation.get():
                return await operation(ctx, *args, **kwargs)
            name = kind if isinstance(kind, str) else kind(kwargs)
            token = _inside_mutation.set(True)
            try:
                result = await operation(ctx, *args, **kwargs)
            except DomainError as exc:
                observer.mutation_finished(name, exc.code)
                raise
            except Exception:
                observer.mutation_finished(name, INTERNAL)
                raise  # cancellation is no outcome: it is not counted
            finally:
                _inside_mutation.reset(token)
            observer.mutation_finished(name, OK)
            return result

        return reported

    return decorate
