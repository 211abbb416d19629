"""`radassist listen`: receive chest radiographs by C-STORE, pre-read them into the worklist, send results back.

Options override the configuration file (`--config`, default `<user data>/pacs.toml`). The command runs until
interrupted (Ctrl+C / SIGTERM) and prints one line per state change, with counts only (no patient data).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from radassist.pacs.config import (
    ResultsDestination,
    ae_title,
    load_config,
    parse_dicomweb_url,
    parse_peer_address,
    port_number,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="PACS configuration file (default: <user data>/pacs.toml)")
    parser.add_argument("--aet", help="this node's AE title (default RADASSIST)")
    parser.add_argument("--port", help="port to listen on (default 11112)")
    parser.add_argument("--bind", help="address to listen on (default 127.0.0.1; 0.0.0.0 = every interface)")
    parser.add_argument("--allow", nargs="+", metavar="AET", help="accept only these calling AE titles")
    parser.add_argument("--spool", type=Path, help="spool and worklist folder (default: <user data>/pacs)")
    parser.add_argument("--results-to", metavar="AET@HOST:PORT", help="C-STORE the results (SR, presentation state, overlay capture) to this peer")
    parser.add_argument("--results-to-dicomweb", metavar="URL", help="STOW-RS the results to this server")
    parser.add_argument("--no-overlay", action="store_true", help="send the SR only (no presentation state or overlay capture)")


def run(args: argparse.Namespace) -> int:
    from radassist.pacs.listener import Listener

    config = load_config(args.config)
    overrides: dict[str, Any] = {}  # PacsConfig field -> value from the command line
    if args.aet:
        overrides["ae_title"] = ae_title(args.aet)
    if args.port:
        overrides["port"] = port_number(args.port)
    if args.bind:
        overrides["bind"] = args.bind
    if args.allow:
        overrides["allow"] = tuple(ae_title(a) for a in args.allow)
    if args.spool:
        overrides["spool"] = args.spool
    results = config.results
    if args.results_to or args.results_to_dicomweb:
        results = ResultsDestination(
            peer=parse_peer_address(args.results_to) if args.results_to else None,
            dicomweb=parse_dicomweb_url(args.results_to_dicomweb) if args.results_to_dicomweb else None)
    if args.no_overlay:
        results = replace(results, overlay=False)
    config = replace(config, results=results, **overrides)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # its INFO/DEBUG output can quote data sets (PHI)
    signal.signal(signal.SIGTERM, _interrupt)
    listener = Listener(config)
    try:
        listener.start()
    except OSError as exc:
        from radassist.errors import InputRefused

        raise InputRefused(f"cannot listen on {config.bind}:{config.port}: {exc.strerror or exc}") from None
    destination = (results.peer and f"{results.peer.ae_title}@{results.peer.host}:{results.peer.port}") or \
        (results.dicomweb and results.dicomweb.url) or "kept local"
    print(f"listening as {config.ae_title} on {config.bind}:{config.port}; spool {listener.spool.root}; "
          f"results: {destination}", flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        print(f"stopped: {listener.received} instance(s) received, {listener.refused} refused", flush=True)
    return 0


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt
