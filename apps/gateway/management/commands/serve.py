"""``manage.py serve``: migrate, import a config (or serve one ``--model``), and serve the
ASGI app.

``--model provider/name [--alias NAME] [--api-base URL]`` serves that one model with no config
file, as ``litellm --model`` does; the provider's key is read from its usual environment
variable (OPENAI_API_KEY, ANTHROPIC_API_KEY...). When no master key is set anywhere, one is
made and printed once (only its digest is kept), so the gateway never runs open.

uvicorn (uvloop + httptools) by default; ``--workers N`` runs N processes, each on its own
SO_REUSEPORT socket (see ``apps.gateway.workers``; uvicorn's shared-socket supervisor where the
platform has no SO_REUSEPORT). daphne is supported with one process. Ctrl-C (SIGINT) or SIGTERM
stops accepting connections and lets in-flight requests finish (up to --graceful-timeout
seconds); pending usage rows are written (or spooled to disk) before exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.keys.services import master_key_ensure
from apps.providers.registry import UnknownProvider
from apps.routing.management.commands.import_config import import_file

APP = "proxy_project.asgi:application"


def multiprocess_metrics_dir() -> str:
    """Workers share their Prometheus values through files in one directory (empty at start,
    removed at exit), named by ``PROMETHEUS_MULTIPROC_DIR`` before they start."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="gateway-metrics-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


class Command(BaseCommand):
    help = "Apply migrations, import a config file if given, and serve the gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", help="A LiteLLM-style config.yaml to import first.")
        parser.add_argument("--model", help="Serve this one model (provider/name), no config.")
        parser.add_argument("--alias", help="The name clients use for --model.")
        parser.add_argument("--api-base", default="", help="The upstream base URL for --model.")
        parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "4000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
        parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
        parser.add_argument("--graceful-timeout", type=int, default=30)
        parser.add_argument("--no-migrate", action="store_true")
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Refuse a --config file with a setting the gateway does not act on.",
        )
        parser.add_argument("--log-level", default="info")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if not opts["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        if opts["config"]:
            import_file(opts["config"], stdout=self.stdout, strict=opts["strict"])
        if opts["alias"] and not opts["model"]:
            raise CommandError("--alias names the model of --model")
        new_master = None
        if opts["model"]:
            self._serve_model(opts)
            new_master = master_key_ensure(configured=settings.PROXY_MASTER_KEY)
        call_command("collectstatic", interactive=False, verbosity=0)
        self._banner(opts)
        if new_master:
            self.stdout.write(f"  Master key:      {new_master}  (shown once; keep it)")
            self.stdout.flush()
        if opts["server"] == "daphne":
            self._daphne(opts)
        else:
            self._uvicorn(opts)

    def _serve_model(self, opts: dict[str, Any]) -> None:
        from apps.routing.services import model_serve

        try:
            deployment = model_serve(
                model=opts["model"], alias=opts["alias"], api_base=opts["api_base"]
            )
        except UnknownProvider as exc:
            raise CommandError(f"--model: unknown provider '{exc.args[0]}'") from None
        except ValueError as exc:
            raise CommandError(f"--model: {exc}") from None
        self.stdout.write(
            f"Serving model '{deployment.group.name}' -> {deployment.provider}/{deployment.model}"
        )

    def _banner(self, opts: dict[str, Any]) -> None:
        host = "localhost" if opts["host"] in ("0.0.0.0", "::") else opts["host"]  # noqa: S104
        base = f"http://{host}:{opts['port']}"
        self.stdout.write(
            f"LLM gateway on {base} ({opts['server']}, {opts['workers']} worker(s))\n"
            f"  OpenAI base URL: {base}/v1\n"
            f"  Admin:           {base}/admin/  (create a user: manage.py createsuperuser)\n"
            f"  Database:        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
        )
        self.stdout.flush()

    def _uvicorn(self, opts: dict[str, Any]) -> None:
        import uvicorn

        from apps.gateway.workers import Supervisor, reuse_port_supported

        options: dict[str, Any] = {
            "loop": "uvloop",
            "http": "httptools",
            "lifespan": "on",
            "log_level": opts["log_level"],
            "access_log": False,
            "timeout_graceful_shutdown": opts["graceful_timeout"],
            "timeout_keep_alive": 75,
        }
        if opts["workers"] > 1:
            multiprocess_metrics_dir()
        if opts["workers"] > 1 and reuse_port_supported():
            supervisor = Supervisor(APP, opts["host"], opts["port"], opts["workers"], options)
            code = supervisor.run()
            if code:
                raise CommandError("a worker did not stop cleanly")
            return
        uvicorn.run(APP, host=opts["host"], port=opts["port"], workers=opts["workers"], **options)

    def _daphne(self, opts: dict[str, Any]) -> None:
        if opts["workers"] != 1:
            raise CommandError("daphne runs one process; use --server uvicorn for --workers")
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(
            [
                "-b",
                opts["host"],
                "-p",
                str(opts["port"]),
                "--application-close-timeout",
                str(opts["graceful_timeout"]),
                APP,
            ]
        )
