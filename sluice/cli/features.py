"""`sluice features apply|plan|materialize`: the feature store's definitions and online features.

`apply` checks every Parquet source, then registers the repository (ml/features); `plan` prints
what apply would change, computed on a scratch copy of the registry (a pull request's check must
not write the real one) and exits 1 with `--exit-code` when there are changes; `materialize`
copies the values valid up to `--end` (default: now) into the online store, and is safe to re-run
after it was killed. `--env cluster` reads feature_store.cluster.yaml, whose variables come from
Secrets (apps/feature-store); `--sources` is where the Parquet files are (default: the demo's,
written into the Sluice home).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from sluice.errors import Refused, SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("features", help=summary, description=__doc__.split("\n\n")[1])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (
        ("apply", "check the sources, then register entities, views and the service"),
        ("plan", "print what apply would change (scratch registry); --exit-code: 1 when it would"),
        ("materialize", "copy feature values up to --end into the online store (re-runnable)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--env", default="local", choices=("local", "cluster"), help="feature_store.<env>.yaml"
        )
        action.add_argument("--home", help="Sluice home (default: .sluice or $SLUICE_HOME)")
        action.add_argument("--sources", help="directory of the views' Parquet sources (default: the demo's)")
        action.set_defaults(func=run_action)
    actions.choices["plan"].add_argument(
        "--exit-code", action="store_true", help="exit 1 when apply would change the registry"
    )
    actions.choices["materialize"].add_argument("--start", help="ISO time (default: 1970-01-01)")
    actions.choices["materialize"].add_argument("--end", help="ISO time (default: now)")


def _when(text: str | None, default: dt.datetime, option: str) -> dt.datetime:
    if not text:
        return default
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise SluiceError(f"{option} {text!r} is not an ISO date/time (e.g. 2024-10-01T00:00:00)") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _sources(args: argparse.Namespace, home) -> Path:
    if args.sources:
        return Path(args.sources).resolve()
    from ml.data.demo import ensure_demo
    from ml.features.record import demo_sources

    return demo_sources(ensure_demo(home.data / "credit-default"), home.data / "feature-sources").directory


def run_action(args: argparse.Namespace) -> int:
    from ml.features import config, store
    from sluice import paths

    home = paths.home(args.home).ensure()
    cfg = config.load(args.env, home.root / "features", need_online=args.action != "plan")
    source_dir = _sources(args, home)
    started = time.perf_counter()
    if args.action == "apply":
        defs = store.apply(cfg, source_dir)
        names = ", ".join(v.name for v in defs.views)
        print(f"sluice: applied {len(defs.objects)} objects (views {names}; service {defs.service.name})")
    elif args.action == "plan":
        changes = store.plan(cfg, source_dir)
        for change in changes:
            print(change)
        print(f"sluice: {len(changes)} change(s)" if changes else "sluice: no changes to the registry")
        if changes and args.exit_code:
            raise Refused(f"apply would make {len(changes)} change(s); review them and apply")
    else:
        end = _when(args.end, dt.datetime.now(dt.UTC), "--end")
        start = _when(args.start, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "--start")
        store.materialize(store.open_store(cfg), cfg, start, end)
        target = cfg.redis_address or cfg.online_type
        print(f"sluice: materialized up to {end.isoformat()} into the {target} online store")
    print(f"  in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
