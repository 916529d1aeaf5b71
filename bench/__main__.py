"""`make bench` / ``python -m bench``: the codec side by side, the software HSM, and end-to-end scenarios.

Commands::

    python -m bench [all]              codec figures, the default scenarios, then ``cell`` (2.5 minutes on 2 cores
                                       before the issuer direction's two scenarios, which add about 70 s)
    python -m bench scenario NAME ...  one scenario (``--list`` shows them); --duration, --rate (0 = open
                                       throttle), --connections, --inflight, --generators, --warmup, --issuer,
                                       --cells and --cards (processor-cell scenarios); in the issuer
                                       direction (net-*-issuer) the network simulator keeps generators x
                                       connections x inflight outstanding over the node's processes' connections
    python -m bench cell               one processor cell in this process under a pipelined client
                                       (bench/cell.py): approvals/s, latency, CPU per decision of the cell
                                       and of its writer thread, batches; every approval checked against the
                                       committed Txn rows and the ledger. --decisions, --connections,
                                       --inflight, --cards, --url (default a temporary SQLite file; a
                                       PostgreSQL URL gets a schema created and dropped for the run)
    python -m bench codec              pyiso8583 against the compiled codec (bench/codec.py)
    python -m bench hsm                software HSM operations per second (bench/hsm_ops.py)
    python -m bench overload           the node offered twice its capacity, open loop, then the load falls:
                                       answered in time, shed, late and lost per phase (bench/overload.py)
    python -m bench faults             node and cells killed under load, then the money checked (bench/faults.py)
    python -m bench saf                the store-and-forward drain into a cell after an outage
                                       (bench/safdrain.py): --advices, --cards, --window, --url

End-to-end reports are printed as a table and saved as JSON under bench/results/ (git-ignored). The
interpreter that ran them is part of every report: say which one when quoting figures.
"""

from __future__ import annotations

import argparse
import sys

from bench import codec, hsm_ops
from bench.cell import CellBenchError, CellOptions, CellReport, format_row, run_cell_bench
from bench.harness import Options, Report, run_scenario
from bench.procs import BenchError, BenchSkipped
from bench.report import Saved, format_table, save
from bench.scenarios import DEFAULT_ORDER, SCENARIOS

# `bench all`: long enough for a steady state, short enough that the whole run stays around four minutes
# (a cells scenario, the issuer direction's included, takes about 35 s with its start and checks: 30 s at 10 s).
ALL_DURATION = 15.0


def _add_load_options(parser: argparse.ArgumentParser, duration: float) -> None:
    d = Options()
    parser.add_argument("--duration", type=float, default=duration, help=f"measured seconds (default {duration:g})")
    parser.add_argument("--warmup", type=float, default=d.warmup, help=f"seconds before measuring ({d.warmup:g})")
    parser.add_argument("--rate", type=float, default=d.rate,
                        help="requests per second in total, paced; 0 = open throttle (default)")
    parser.add_argument("--connections", type=int, default=d.connections,
                        help=f"connections per generator process ({d.connections})")
    parser.add_argument("--inflight", type=int, default=d.inflight,
                        help=f"requests in flight per connection ({d.inflight})")
    parser.add_argument("--generators", type=int, default=d.generators,
                        help=f"generator processes ({d.generators})")
    parser.add_argument("--issuer", choices=("process", "in-node"), default=d.issuer,
                        help="issuer simulator in its own process (default) or inside the node")
    parser.add_argument("--cells", type=int, default=d.cells,
                        help=f"processor cells, for the cells scenarios ({d.cells})")
    parser.add_argument("--cards", type=int, default=d.cards,
                        help=f"cards seeded over the cells, {d.credit_share * 100:.0f}%% of them credit ({d.cards})")
    parser.add_argument("--processes", type=int, default=d.processes,
                        help=f"node processes sharing the listeners, [node] processes ({d.processes})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, logs, db)")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON under bench/results/")


def _options(args: argparse.Namespace) -> Options:
    if args.duration <= 0 or args.warmup < 0 or args.rate < 0:
        raise SystemExit("duration must be positive, warmup and rate not negative")
    if args.connections < 1 or args.inflight < 1 or args.generators < 1:
        raise SystemExit("connections, inflight and generators must be at least 1")
    if not 1 <= args.cells <= 100 or args.cards < args.cells:
        raise SystemExit("cells must be 1..100 and cards at least one per cell")
    if not 1 <= args.processes <= 64:
        raise SystemExit("processes must be 1..64")
    return Options(duration=args.duration, warmup=args.warmup, rate=args.rate, connections=args.connections,
                   inflight=args.inflight, generators=args.generators, issuer=args.issuer, keep=args.keep,
                   cells=args.cells, cards=args.cards, processes=args.processes)


def _add_cell_options(parser: argparse.ArgumentParser) -> None:
    d = CellOptions()
    parser.add_argument("--decisions", type=int, default=d.decisions, help=f"requests sent ({d.decisions})")
    parser.add_argument("--connections", type=int, default=d.connections, help=f"connections ({d.connections})")
    parser.add_argument("--inflight", type=int, default=d.inflight,
                        help=f"requests in flight per connection ({d.inflight})")
    parser.add_argument("--cards", type=int, default=d.cards, help=f"funded debit cards seeded ({d.cards})")
    parser.add_argument("--url", help="cell database (default: a temporary SQLite file); a PostgreSQL URL gets "
                                      "a schema of its own, dropped afterwards")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON under bench/results/")


def _cell(options: CellOptions) -> CellReport | None:
    print(f"-- cell: {options.decisions} decisions, {options.connections}x{options.inflight} in flight, "
          f"{options.cards} cards", flush=True)
    try:
        return run_cell_bench(options)
    except CellBenchError as exc:
        print(f"   failed: {exc}", file=sys.stderr)
        return None


def _run(names: list[str], options: Options, save_json: bool, extra: dict[str, object] | None = None,
         cell: CellOptions | None = None) -> int:
    reports: list[Report] = []
    for name in names:
        print(f"-- {name}: {SCENARIOS[name].description}", flush=True)
        try:
            reports.append(run_scenario(SCENARIOS[name], options))
        except BenchSkipped as exc:
            print(f"   skipped: {exc}", flush=True)
        except BenchError as exc:
            print(f"   failed: {exc}", file=sys.stderr)
            return 1
    cell_report = _cell(cell) if cell is not None else None
    print()
    print(codec.interpreter())
    if reports:
        print(format_table(reports))
    if cell_report is not None:
        print(format_row(cell_report))
    saved: list[Saved] = [*reports, *([cell_report] if cell_report else [])]
    if save_json and saved:
        print(f"saved {save(saved, extra)}")
    return 1 if cell is not None and cell_report is None else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    all_parser = sub.add_parser("all", help="codec figures, then every scenario")
    _add_load_options(all_parser, ALL_DURATION)
    one = sub.add_parser("scenario", help="run one scenario")
    one.add_argument("name", nargs="?", help=f"one of: {', '.join(SCENARIOS)}")
    one.add_argument("--list", action="store_true", help="list the scenarios")
    _add_load_options(one, Options().duration)
    cell = sub.add_parser("cell", help="one processor cell: approvals/s and CPU per decision")
    _add_cell_options(cell)
    sub.add_parser("codec", help="pyiso8583 against the compiled codec")
    sub.add_parser("hsm", help="software HSM operations per second")
    sub.add_parser("faults", help="node and cells killed under load, then the money checked (bench/faults.py)",
                   add_help=False)
    if argv is None:
        argv = sys.argv[1:]
    sub.add_parser("overload", help="twice the capacity, open loop, then less (bench/overload.py)",
                   add_help=False)
    sub.add_parser("saf", help="SAF drain into a processor cell (bench/safdrain.py)", add_help=False)
    if argv[:1] == ["faults"]:
        from bench import faults

        return faults.main(argv[1:])
    if argv[:1] == ["overload"]:
        from bench import overload

        return overload.main(argv[1:])
    if argv[:1] == ["saf"]:
        from bench import safdrain

        return safdrain.main(argv[1:])
    args = parser.parse_args(argv)

    if args.command == "codec":
        codec.main([])
        return 0
    if args.command == "hsm":
        hsm_ops.main(["--seconds", "1"])
        return 0
    if args.command == "cell":
        if min(args.decisions, args.connections, args.inflight, args.cards) < 1:
            parser.error("decisions, connections, inflight and cards must be at least 1")
        report = _cell(CellOptions(decisions=args.decisions, connections=args.connections, inflight=args.inflight,
                                   cards=args.cards, url=args.url))
        if report is None:
            return 1
        print(codec.interpreter())
        print(format_row(report))
        if not args.no_save:
            print(f"saved {save([report])}")
        return 0
    if args.command == "scenario":
        if args.list or args.name is None:
            for scenario in SCENARIOS.values():
                print(f"{scenario.name:<15} {scenario.description}")
            return 0 if args.list else 2
        if args.name not in SCENARIOS:
            parser.error(f"unknown scenario {args.name!r}; one of: {', '.join(SCENARIOS)}")
        return _run([args.name], _options(args), not args.no_save)
    if args.command is None:
        args = all_parser.parse_args([])
    options = _options(args)
    print("== codec: pyiso8583 vs compiled", flush=True)
    figures = codec.measure(3)
    print(codec.interpreter())
    print(codec.format_table(figures))
    print()
    print(f"== end to end ({options.duration:g} s per scenario after a {options.warmup:g} s warm-up)", flush=True)
    extra: dict[str, object] = {"codec": [dict(vars(f), ratio=f.ratio) for f in figures]}
    return _run(list(DEFAULT_ORDER), options, not args.no_save, extra, cell=CellOptions())


if __name__ == "__main__":
    sys.exit(main())
