"""What the command line says, in one line and no traceback, when something outside roomrender's
code fails: a server that is down or refuses the connection, an optional package that is not
installed, a database that cannot be reached, a hub that cannot be reached. A bug still shows
its traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

# The modules of the `diffusers` extra (pyproject.toml), by their import names.
DIFFUSERS_EXTRA = frozenset({"torch", "diffusers", "transformers", "safetensors", "accelerate", "peft",
                             "compel", "huggingface_hub"})
INSTALL_DIFFUSERS = "pip install 'roomrender[diffusers]'"

errors = Console(stderr=True, highlight=False)


def causes(failure: BaseException) -> Iterator[BaseException]:
    """The failure and what it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = failure
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def connection_trouble(failure: BaseException) -> str | None:
    """Why a connection could not be made, in a few words (None: the failure is something else).
    By class names too: libraries vendor their own HTTP clients (huggingface_hub's httpx)."""
    for cause in causes(failure):
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cause, socket.gaierror):
            return "its name does not resolve"
        if isinstance(cause, TimeoutError):
            return "it did not answer in time"
        if isinstance(cause, ConnectionError | OSError) and cause.__class__ is not OSError:
            return str(cause) or cause.__class__.__name__
        names = {cls.__name__ for cls in type(cause).__mro__}
        if names & {"ConnectTimeout", "ReadTimeout", "TimeoutException"}:
            return "it did not answer in time"
        if names & {"ConnectError", "ConnectionError", "NetworkError"}:
            text = str(cause)
            return "the connection was refused" if "refused" in text.lower() else (text or "it cannot be reached")
    return None


def missing_extra(failure: BaseException) -> str | None:
    for cause in causes(failure):
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            root = cause.name.split(".")[0]
            if root in DIFFUSERS_EXTRA:
                return (f"this needs the `diffusers` extra, which is not installed (no module {root!r}): "
                        f"{INSTALL_DIFFUSERS}")
            return f"the package {root!r} is not installed: reinstall roomrender (pip install roomrender)"
    return None


def explain(failure: BaseException) -> str | None:
    """One line for a user (None: a bug, whose traceback is worth seeing)."""
    if isinstance(failure, httpx.TransportError):
        url = failure.request.url if _has_request(failure) else None
        where = f"{url.scheme}://{url.netloc.decode()}" if url is not None else "the server"
        if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
            why = connection_trouble(failure) or str(failure)
            return (f"cannot reach the roomrender server at {where}: {why}. Is it running "
                    "(`roomrender serve`)? Another address: --server or ROOMRENDER_URL")
        if isinstance(failure, httpx.TimeoutException):
            return f"the roomrender server at {where} did not answer in time"
        return f"the connection to the roomrender server at {where} broke: {failure or type(failure).__name__}"
    if isinstance(failure, OperationalError):
        reason = str(failure.orig).strip().splitlines()[0] if failure.orig else str(failure)
        return f"the database cannot be reached: {reason} (ROOMRENDER_DATABASE_URL)"
    return missing_extra(failure)


def _has_request(failure: httpx.TransportError) -> bool:
    try:
        failure.request  # noqa: B018 (raises when the error carries no request)
    except RuntimeError:
        return False
    return True


class FriendlyGroup(TyperGroup):
    """The command group that turns the failures `explain` knows into one line on stderr and
    exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as failure:
            message = None if isinstance(failure, typer.Exit | typer.Abort) else explain(failure)
            if message is None:
                raise
            errors.print(f"[red]error[/red]: {escape(message)}", soft_wrap=True)
            raise typer.Exit(1) from None
