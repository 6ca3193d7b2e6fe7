"""The `roomrender` command: serve | worker | webhooks | keys | teams | submit | db | models.

Failures outside roomrender's code (a server down, a missing extra) are one line, no traceback
(cli_errors.py); tables never cut an id or a path (cli_tables.py)."""

from __future__ import annotations

import errno
import gc
import inspect
import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from roomrender.canonical.errors import RoomrenderError
from roomrender.canonical.models import Task
from roomrender.canonical.tasks import IMAGE_INPUTS
from roomrender.cli_errors import FriendlyGroup, connection_trouble, missing_extra
from roomrender.cli_tables import print_rows
from roomrender.config import Settings
from roomrender.task_flags import is_local_file, request_fields, task_flags
from roomrender.warmup import Warmup

app = typer.Typer(help="roomrender: self-hosted AI interior-design rendering.", no_args_is_help=True,
                  cls=FriendlyGroup)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
teams_app = typer.Typer(help="Teams: keys that share one credit balance.", no_args_is_help=True)
app.add_typer(teams_app, name="teams")
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="Model weights of the diffusers engine.", no_args_is_help=True)
app.add_typer(models_app, name="models")
# Soft wrap: long lines (URLs, paths, ids) are never broken nor cut by rich; a terminal wraps them.
console = Console(soft_wrap=True)


def _settings(**overrides: Any) -> Settings:
    settings = Settings()
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _logging(settings: Settings, level: str = "info") -> None:
    from roomrender.logs import configure

    configure(level, settings.log_format)


def _serve_metrics(settings: Settings, port: int | None, host: str | None,
                   warmup: Warmup | None = None) -> None:
    """Expose a worker's or dispatcher's metrics and probes (/healthz, /readyz) over HTTP, when a
    port is given."""
    from roomrender.probes import serve_probes

    port = settings.metrics_port if port is None else port
    if port:
        host = host or settings.metrics_host
        serve_probes(port, host, warmup or Warmup.not_needed())
        logging.getLogger("roomrender").info("metrics on http://%s:%d/metrics", host, port)


MetricsPort = Annotated[int | None, typer.Option(
    help="serve this process's Prometheus metrics on this port (ROOMRENDER_METRICS_PORT)")]
MetricsHost = Annotated[str | None, typer.Option(
    help="address for --metrics-port (ROOMRENDER_METRICS_HOST, default 127.0.0.1)")]


def _services(settings: Settings):  # type: ignore[no-untyped-def]
    from roomrender.db.database import SchemaOutOfDate
    from roomrender.services import build_services

    try:
        return build_services(settings)
    except SchemaOutOfDate as behind:
        console.print(f"[red]error[/red]: {behind}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(help="in-process workers (0: run `roomrender worker` apart)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the HTTP API and, by default, one worker in the same process."""
    import uvicorn

    from roomrender.api.http_server import uvicorn_limits
    from roomrender.app import create_app

    settings = _settings(host=host, port=port)
    _check_port_free(settings.host, settings.port)
    if "ROOMRENDER_PUBLIC_BASE_URL" not in os.environ:
        settings = settings.model_copy(
            update={"public_base_url": f"http://{settings.host}:{settings.port}"})
    _logging(settings, log_level)
    services = _services(settings)
    base = settings.public_base_url.rstrip("/")
    console.print(f"roomrender serving on [bold]{base}[/bold]  (engine: {services.engine.name}, "
                  f"data: {settings.data_dir.resolve()})")
    console.print(f"Playground: [bold]{base}/[/bold]")
    console.print(f"API docs: [bold]{base}/docs[/bold]")
    if services.keys.count() == 0:
        key, plaintext = services.keys.create("default", settings.first_key_credits)
        console.print("First start: created an API key (shown once, only its hash is kept).")
        console.print(f"To try it, open [bold]{base}/[/bold] and paste this key:")
        print(plaintext, flush=True)
    else:
        console.print("API keys are shown only when created; a new one: "
                      "[bold]roomrender keys create --name <who>[/bold] (the list: roomrender keys list)")
    served = create_app(settings, services=services, workers=workers)
    # What is loaded now (the engine's libraries: ~290,000 objects with diffusers) lives as long
    # as the process: frozen, the garbage collector's full collections skip it instead of
    # scanning it each time (~130 ms with diffusers), a stall of every request and event stream.
    gc.collect()
    gc.freeze()
    # JSON logs: uvicorn's loggers go through the root logger's JSON formatter, not its own.
    uvicorn.run(served, host=settings.host,
                port=settings.port, log_level=log_level,
                log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
                timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
                **uvicorn_limits())


def _check_port_free(host: str, port: int) -> None:
    """Refuse to start on a port another process listens on, saying how to pick another."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as taken:
            reason = ("is taken: another process listens there (another roomrender?)"
                      if taken.errno == errno.EADDRINUSE else f"cannot be used: {taken.strerror}")
            console.print(f"[red]error[/red]: port {port} on {host} {reason}. Pick another with "
                          f"--port {port + 1} or ROOMRENDER_PORT={port + 1} "
                          f"(make serve: ROOMRENDER_PORT={port + 1} make serve); clients then use "
                          f"ROOMRENDER_URL=http://{host}:{port + 1}", soft_wrap=True)
            raise typer.Exit(1) from None


@app.command()
def worker(
    tasks: Annotated[str | None, typer.Option(help="comma-separated tasks this worker takes")] = None,
    pipelines: Annotated[str | None, typer.Option(
        help="comma-separated pipelines this worker takes: a job matches when its batch key "
             "equals one or starts with one followed by ':' (e.g. preview:restyle)")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = None,
) -> None:
    """Run a standalone worker: it needs only the database and the storage, no API address.
    SIGTERM: it takes no new batch, lets the running one end within ROOMRENDER_WORKER_STOP_GRACE_SECONDS,
    else hands its jobs back to the queue, and exits."""
    settings = _settings()
    _logging(settings)
    services = _services(settings)
    chosen = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    chosen_pipelines = ([p.strip() for p in pipelines.split(",") if p.strip()]
                        if pipelines else None)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    warmup = Warmup.of(services.engine)
    _serve_metrics(settings, metrics_port, metrics_host, warmup)
    warmup.run(services.engine.warm_up)
    services.new_worker(tasks=chosen, pipelines=chosen_pipelines).run(stop)
    logging.getLogger("roomrender.worker").info("worker stopped")


@app.command()
def webhooks(metrics_port: MetricsPort = None, metrics_host: MetricsHost = None) -> None:
    """Run a standalone webhook dispatcher (`serve` runs one already; more may run side by side)."""
    settings = _settings()
    _logging(settings)
    dispatcher = _services(settings).new_dispatcher()
    _serve_metrics(settings, metrics_port, metrics_host)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        dispatcher.run(stop)
    finally:
        dispatcher.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who the key is for")],
    credits: Annotated[int | None, typer.Option(help="credits (omit for unlimited)")] = None,
    rate_limit: Annotated[str | None, typer.Option(
        help="requests this key may make, e.g. 100/second or 10/second;1000/hour "
             "(omit for the server's ROOMRENDER_RATE_LIMIT)")] = None,
    max_active_jobs: Annotated[int | None, typer.Option(
        help="queued + running jobs this key may have at once "
             "(omit for the server's ROOMRENDER_MAX_ACTIVE_JOBS)")] = None,
    team: Annotated[int | None, typer.Option(
        help="the team the key joins (it draws on the team's credits)")] = None,
    role: Annotated[str, typer.Option(help="its role in --team: member or admin")] = "member",
) -> None:
    """Create a key; the key itself is printed alone on the last line."""
    services = _services(_settings())
    try:
        if team is not None:
            services.teams.get(team)
        key, plaintext = services.keys.create(
            name, credits, rate_limit=rate_limit, max_active_jobs=max_active_jobs)
        if team is not None:
            services.teams.add_key(team, key.id, role)
    except (ValueError, RoomrenderError) as bad:
        console.print(f"[red]error[/red]: {bad}")
        raise typer.Exit(2) from None
    console.print(f"created key {key.id} ({key.name}), credits: "
                  f"{'unlimited' if credits is None else credits}, rate limit: "
                  f"{rate_limit or 'the server default'}, active jobs: "
                  f"{max_active_jobs or 'the server default'}")
    print(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    rows = [[key.id, escape(key.name), key.prefix,
             "unlimited" if key.credits_available is None else str(key.credits_available),
             str(key.credits_used), escape(key.rate_limit or "default"),
             "default" if key.max_active_jobs is None else str(key.max_active_jobs),
             "yes" if key.revoked_at else ""]
            for key in _services(_settings()).keys.list()]
    print_rows(console, ["id", "name", "prefix", "credits left", "used", "rate limit", "active jobs",
                         "revoked"], rows)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id or prefix")]) -> None:
    revoked = _services(_settings()).keys.revoke(key_id)
    if revoked is None:
        console.print(f"no key {key_id!r}")
        raise typer.Exit(1)
    console.print(f"revoked {revoked.id} ({revoked.name})")


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Option(help="the team's name (a department)")],
    owner: Annotated[str, typer.Option(help="the id of the key that owns the team")],
    credits: Annotated[int | None, typer.Option(help="the shared credits (omit for unlimited)")] = None,
) -> None:
    """Create a team; its owner key (and every key that joins) draws on its one balance."""
    try:
        team = _services(_settings()).teams.create(name, owner, credits)
    except RoomrenderError as bad:
        console.print(f"[red]error[/red]: {bad}")
        raise typer.Exit(2) from None
    console.print(f"created team {team.id} ({escape(team.name)}), credits: "
                  f"{'unlimited' if credits is None else credits}")


@teams_app.command("list")
def teams_list() -> None:
    services = _services(_settings())
    rows = []
    for team in services.teams.all():
        balance = services.ledger.team_balance(team.id)
        rows.append([str(team.id), escape(team.name),
                     "unlimited" if balance.available is None else str(balance.available),
                     str(balance.used), str(len(services.teams.members_of(team.id)))])
    print_rows(console, ["id", "name", "credits left", "used", "members"], rows)


@teams_app.command("members")
def teams_members(team_id: Annotated[int, typer.Argument(help="the team's id")]) -> None:
    services = _services(_settings())
    rows = [[str(member.id), member.key_id, escape(member.key_name), member.role,
             escape(member.email or "")] for member in services.teams.members_of(team_id)]
    print_rows(console, ["member", "key", "name", "role", "email"], rows)


@teams_app.command("add-key")
def teams_add_key(
    team_id: Annotated[int, typer.Argument(help="the team's id")],
    key_id: Annotated[str, typer.Argument(help="the key's id")],
    role: Annotated[str, typer.Option(help="member or admin")] = "member",
) -> None:
    """Put an existing key in a team, without an invitation."""
    try:
        member = _services(_settings()).teams.add_key(team_id, key_id, role)
    except RoomrenderError as bad:
        console.print(f"[red]error[/red]: {bad}")
        raise typer.Exit(2) from None
    console.print(f"key {key_id} is member {member.id} of team {team_id} ({member.role})")


@teams_app.command("grant")
def teams_grant(
    team_id: Annotated[int, typer.Argument(help="the team's id")],
    credits: Annotated[int, typer.Argument(help="credits to add to the shared balance")],
) -> None:
    try:
        balance = _services(_settings()).teams.grant(team_id, credits)
    except RoomrenderError as bad:
        console.print(f"[red]error[/red]: {bad}")
        raise typer.Exit(2) from None
    left = "unlimited" if balance.available is None else balance.available
    console.print(f"team {team_id}: {left} credits left, {balance.used} used")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to ROOMRENDER_DATABASE_URL."""
    from roomrender.db.database import current_revision, open_database, upgrade

    db = open_database(_settings().resolved_database_url())
    upgrade(db)
    console.print(f"database at revision {current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    from roomrender.db.database import current_revision, head_revision, open_database

    db = open_database(_settings().resolved_database_url())
    console.print(f"database: {current_revision(db)}  code: {head_revision()}")


def _registry_and_target(settings: Settings, target: str | None) -> tuple[Any, list[Any]]:
    from roomrender.engines.diffusers.check import UnknownTarget, select
    from roomrender.engines.diffusers.registry import load_registry
    from roomrender.engines.diffusers.settings import DiffusersSettings

    registry = load_registry(settings.diffusers_registry)
    try:
        return registry, select(registry, target, DiffusersSettings.read(settings).family or None)
    except UnknownTarget as unknown:
        console.print(f"[red]error[/red]: {unknown}")
        raise typer.Exit(2) from None


TARGET_HELP = ("a task (restyle), a family (sdxl), family:task, or all; "
               "default: what the server runs for jobs that name no model")


@models_app.command("check")
def models_check(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP)] = None,
    models_dir: Annotated[Path | None, typer.Option(help="the models folder (ROOMRENDER_MODELS_DIR)")] = None,
) -> None:
    """List, per task, the weights present and missing, with the ids to fetch and each model's
    licence (non-commercial ones flagged); exit 1 if any is missing."""
    from roomrender.engines.diffusers.check import check_models, fetch_commands
    from roomrender.engines.diffusers.whole_pipelines import memory_line

    settings = _settings(models_dir=models_dir)
    registry, specs = _registry_and_target(settings, target)
    report = check_models(registry, settings.models_dir, specs)
    rows: list[list[str]] = []
    flagged: list[str] = []
    gated: dict[str, str] = {}
    for entry in report:
        for index, presence in enumerate(entry.models):
            spec = presence.spec
            licence = spec.licence or "unknown"
            if registry.is_non_commercial(spec):
                licence = f"[yellow]{licence} NON-COMMERCIAL[/yellow]"
                flagged.append(spec.id)
            if registry.is_gated(spec):
                licence = f"[yellow]{licence} LICENCE-GATED[/yellow]"
                gated.setdefault(spec.id, spec.licence or "")
            status = (f"[green]present[/green] {escape(str(presence.path))}" if presence.present
                      else f"[red]missing[/red] {escape(', '.join(presence.missing))}")
            rows.append([entry.name if index == 0 or not console.is_terminal else "", spec.label,
                         spec.kind, licence, status])
    console.print(f"models folder: {settings.models_dir or '(not set: --models-dir or ROOMRENDER_MODELS_DIR)'}; "
                  "also the Hugging Face cache", soft_wrap=True)
    print_rows(console, ["task", "model", "kind", "licence", "status"], rows)
    if flagged:
        console.print("[yellow]non-commercial licences[/yellow]: "
                      f"{', '.join(dict.fromkeys(flagged))} may not be used commercially")
    for family in dict.fromkeys(entry.family for entry in report if entry.family):
        line = memory_line(registry.family(family))
        if line:
            console.print(f"memory of {family}: {line}", soft_wrap=True)
    for model_id, licence in gated.items():
        console.print(f"[yellow]licence-gated[/yellow]: {model_id} is under {licence}, which excludes some "
                      f"territories and uses; never a default; pulled only with --accept-licence {licence}",
                      soft_wrap=True)
    commands = fetch_commands(report, settings.models_dir)
    ready = [e.name for e in report if e.ready]
    console.print(f"ready: {', '.join(ready) or 'none'}")
    if commands:
        first = next(entry.name for entry in report if not entry.ready)
        console.print(f"missing: fetch them with `roomrender models pull{f' {target}' if target else ''}` "
                      f"(one task: `roomrender models pull {first}`), or on a machine with internet with",
                      soft_wrap=True)
        for command in commands:
            print(f"  {command}")
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP)] = None,
    models_dir: Annotated[Path | None, typer.Option(help="the models folder (ROOMRENDER_MODELS_DIR)")] = None,
    accept_licence: Annotated[list[str] | None, typer.Option(
        "--accept-licence", help="accept a licence-gated model's licence by name (tencent-hunyuan-community)")] = None,
) -> None:
    """Download exactly the files the registry needs for TARGET from the Hugging Face Hub (or
    HF_ENDPOINT) into the models folder, resumably; then check them."""
    from roomrender.engines.diffusers.pull import LicenceNotAccepted, pull, refuse_unaccepted

    settings = _settings(models_dir=models_dir)
    if settings.models_dir is None:
        console.print("[red]error[/red]: set the models folder: --models-dir or ROOMRENDER_MODELS_DIR")
        raise typer.Exit(2)
    registry, specs = _registry_and_target(settings, target)
    wanted = [registry.models[key] for spec in specs for key in [*spec.model_keys(), *spec.optional_keys()]]
    try:
        refuse_unaccepted(wanted, registry.gated, accept_licence or [])
    except LicenceNotAccepted as refused:
        console.print(f"[red]error[/red]: {escape(str(refused))}", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        pull(wanted, settings.models_dir, report=console.print)
    except Exception as failed:
        console.print(f"[red]error[/red]: {escape(_pull_failure(failed))}", soft_wrap=True)
        raise typer.Exit(1) from None
    models_check(target, settings.models_dir)


def _pull_failure(failed: Exception) -> str:
    from roomrender.engines.diffusers.pull import hub_endpoint

    trouble = connection_trouble(failed)
    if trouble is not None:
        return (f"cannot reach the Hugging Face Hub at {hub_endpoint() or 'https://huggingface.co'}: "
                f"{trouble}. Check the network, or set HF_ENDPOINT to a mirror this machine reaches; "
                "`roomrender models check` prints `hf download` commands to run on a machine with internet")
    return missing_extra(failed) or f"the download failed: {type(failed).__name__}: {failed}"


@models_app.command("list")
def models_list() -> None:
    """Every model of the registry: its id, kind, licence and the tasks that use it (`models check`
    says which are here)."""
    from roomrender.engines.diffusers.registry import load_registry

    registry = load_registry(_settings().diffusers_registry)
    used_by: dict[str, list[str]] = {}
    for spec in registry.all_specs():
        for model in [*registry.models_of(spec), *registry.optional_models_of(spec)]:
            used_by.setdefault(model.key, []).append(spec.name)
    rows = [[model.label, model.kind, model.licence or "unknown", ", ".join(used_by.get(model.key, []))]
            for model in registry.models.values()]
    print_rows(console, ["model", "kind", "licence", "tasks"], rows)


def _sse_events(response: httpx.Response):  # type: ignore[no-untyped-def]
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "keep-alive", {}  # the stream is quiet: a moment to look at the job
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


def _show_help(ctx: typer.Context, value: bool) -> None:
    if value:
        typer.echo(ctx.get_help())
        raise typer.Exit()


# Typer's own --help shows as `--help <bool>`; a flag takes no value, so it shows none.
HelpFlag = Annotated[bool, typer.Option("--help", metavar="", is_eager=True, expose_value=False,
                                        callback=_show_help, help="Show this message and exit.")]


def submit(
    image: Annotated[Path | None, typer.Argument(
        exists=True, dir_okay=False, help="the photo (every task but text_to_image)")] = None,
    task: Annotated[Task, typer.Option(help="the task")] = Task.restyle,
    wait: Annotated[bool, typer.Option("--wait", metavar="",
                                       help="follow progress and save the results")] = False,
    out: Annotated[Path, typer.Option(help="where results are saved")] = Path("."),
    server: Annotated[str, typer.Option(envvar="ROOMRENDER_URL")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar="ROOMRENDER_API_KEY", help="API key")] = None,
    show_help: HelpFlag = False,
    **given: Any,
) -> None:
    """Send a job to a running server; with --wait, show progress and save the results. Every
    option of every task has its flag (generated from the task definitions)."""
    if not key:
        console.print("an API key is needed: --key or ROOMRENDER_API_KEY")
        raise typer.Exit(2)
    fields = request_fields(task, _SUBMIT_FLAGS, given)
    if image is not None:
        fields["image"] = str(image)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server, headers=headers, timeout=60) as client:
        body: dict[str, Any] = {"task": task.value}
        for name, value in fields.items():
            if name in IMAGE_INPUTS:
                value = ([_image_ref(client, ref) for ref in value] if isinstance(value, list)
                         else _image_ref(client, value))
            body[name] = value
        created = client.post("/v1/jobs", json=body)
        _raise_for(created)
        job = created.json()
        console.print(f"job {job['id']} {job['status']}")
        if not wait:
            print(job["urls"]["self"])
            return
        job = _follow(client, job)
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            console.print(f"job {job['status']}: {error.get('message', '')}")
            raise typer.Exit(1)
        out.mkdir(parents=True, exist_ok=True)
        for index, output in enumerate(job["outputs"], start=1):
            extension = output["content_type"].split("/")[-1].replace("jpeg", "jpg")
            path = out / f"{job['id']}-{index}.{extension}"
            response = client.get(output["url"])
            _raise_for(response)
            path.write_bytes(response.content)
            size = f" ({output['width']}x{output['height']})" if output.get("width") else ""
            console.print(f"saved {path}{size}")


# The command's own parameters, then a flag for each task option (task_flags.py), which reach
# `submit` in `given`.
_SUBMIT_FLAGS = task_flags()
submit.__signature__ = inspect.signature(submit, eval_str=True).replace(  # type: ignore[attr-defined]
    parameters=[*(p for p in inspect.signature(submit, eval_str=True).parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD),
                *(p for flag in _SUBMIT_FLAGS for p in flag.parameters)])
app.command(add_help_option=False)(submit)


def _image_ref(client: httpx.Client, reference: str) -> str:
    """A file here is uploaded (its upload id is sent); a URL, data: URI or upload id goes as it is."""
    if not is_local_file(reference):
        return reference
    path = Path(reference)
    upload = client.post("/v1/uploads", files={"file": (path.name, path.read_bytes())})
    _raise_for(upload)
    return str(upload.json()["id"])


def _follow(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """The job's events, shown as a progress bar, until it ends; the job as it ended."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task(job["status"], total=100)
        with client.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=None) as stream:
            _raise_for(stream)
            told: set[str] = set()
            for event, data in _sse_events(stream):
                if event == "keep-alive" and job["status"] == "queued":
                    # Nothing changed for a while: a queued job may be waiting for a worker.
                    event, data = "status", client.get(f"/v1/jobs/{job['id']}").json()
                if event == "status":
                    job = data
                    label = job["status"]
                    if job.get("queue_position"):
                        label += f" (#{job['queue_position']} in queue)"
                    progress.update(bar, completed=job["progress"], description=label)
                    waiting = job.get("waiting_for")
                    if waiting and waiting not in told:
                        progress.console.print(f"waiting for {escape(waiting)}", soft_wrap=True)
                        told.add(waiting)
                elif event == "end":
                    break
    return job


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    console.print(f"[red]HTTP {response.status_code}[/red]: {message}")
    raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    app()
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
