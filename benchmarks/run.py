"""``make bench``: Argus and its peers under the same load, against the in-process ceiling.

Measures, in one run: the ceiling (no server: 2 processes x 1 ONNX Runtime thread doing
decode + preprocess + inference), then each system started as a subprocess and loaded by a
separate load-generator process at each concurrency level. Prints a table (images/s, p50, p99,
errors, ratio to the ceiling, client and server CPU) and writes JSON + PNG to
benchmarks/results/. ``--soak`` instead sends 10,000 requests to Argus and prints RSS before
and after. ``--quick`` is a smoke run of a minute or two.

Argus configurations to compare: ``--argus 'LABEL: ARGS ENV=VALUE ...'`` (repeatable), e.g.
``--argus 'w2: --workers 2 ARGUS_INTRA_OP_THREADS=1' --argus 'b1: ARGUS_MAX_BATCH_SIZE=1'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from peers.pipeline import Classifier
from serving import int8, report, samples
from serving.ceiling import Ceiling, measure, measure_ceiling
from serving.measure import memory_line, run_loadgen, sanity, stolen_seconds
from serving.servers import ServerSpec, serving
from serving.systems import DEFAULT_ARGUS_CONFIGS, PEERS, ArgusConfig, argus_spec, peer_spec

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
MODEL = "efficientnet-lite0"
CORES = os.cpu_count() or 1
DEFAULT_SYSTEMS = ["ceiling", "argus", int8.LABEL, "fastapi", "flask", "litserve", "mlserver"]


@dataclass(frozen=True)
class Plan:
    levels: list[int]
    duration_s: float
    warmup_s: float
    ceiling_s: float
    quick: bool

    def estimate_s(self, servers: int) -> float:
        per_level = self.duration_s + self.warmup_s + 1.0
        return 7 * self.ceiling_s + 12 + servers * (len(self.levels) * per_level + 8)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 2)[-1],
    )
    parser.add_argument("--quick", action="store_true", help="short levels: a smoke run")
    parser.add_argument("--duration", type=float, help="measured seconds per level (10; quick 2)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds per level (2; quick 0.5)")
    parser.add_argument(
        "--ceiling-seconds", type=float, help="seconds of the ceiling's main loop (8; quick 2)"
    )
    parser.add_argument("--concurrency", default="1,4,16,64", help="levels, comma-separated")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from ceiling, argus, {int8.LABEL}, {', '.join(PEERS)}",
    )
    parser.add_argument(
        "--argus",
        action="append",
        type=ArgusConfig.parse,
        metavar="'LABEL: ARGS ENV=VALUE'",
        help="an Argus configuration to run (repeatable; replaces the default list)",
    )
    parser.add_argument(
        "--argus-home",
        type=Path,
        default=Path(os.environ.get("ARGUS_HOME") or WORK / "home"),
        help="ARGUS_HOME with the model pulled (pulled there if missing)",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--soak", action="store_true", help="10,000 requests to Argus; RSS")
    parser.add_argument("--soak-requests", type=int, default=10_000)
    parser.add_argument("--soak-concurrency", type=int, default=16)
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    def pick(value: float | None, full: float, quick: float) -> float:
        if value is not None:
            return value
        return quick if args.quick else full

    return Plan(
        levels=[int(x) for x in args.concurrency.split(",") if x.strip()],
        duration_s=pick(args.duration, 10.0, 2.0),
        warmup_s=pick(args.warmup, 2.0, 0.5),
        ceiling_s=pick(args.ceiling_seconds, 8.0, 2.0),
        quick=args.quick,
    )


def argus_bin() -> Path:
    beside = Path(sys.executable).parent / "argus"
    found = beside if beside.is_file() else shutil.which("argus")
    if not found:
        raise SystemExit("the argus command is not installed in this environment (make setup)")
    return Path(found)


def ensure_model(home: Path) -> Path:
    """The package directory of the production version, pulled into ``home`` if missing."""

    def argus(*words: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ARGUS_HOME": str(home)}
        return subprocess.run(
            [str(argus_bin()), *words], env=env, capture_output=True, text=True, check=False
        )

    show = argus("models", "show", MODEL, "--json")
    if show.returncode != 0:
        print(f"pulling {MODEL} into {home} ...", flush=True)
        pull = argus("models", "pull", MODEL)
        if pull.returncode != 0:
            raise SystemExit(f"argus models pull failed:\n{pull.stdout}{pull.stderr}")
        show = argus("models", "show", MODEL, "--json")
    data = json.loads(show.stdout)
    production = data.get("aliases", {}).get("production")
    versions = data["versions"]
    chosen = next((v for v in versions if v["version"] == production), versions[0])
    return Path(chosen["path"]).resolve()


def expected_top1(model_dir: Path, images: list[Path]) -> dict[str, str]:
    classifier = Classifier(str(model_dir), threads=1)
    return {p.stem: classifier.classify(p.read_bytes())["labels"][0]["label"] for p in images}


def describe_ceiling(c: Ceiling) -> str:
    return (
        f"ceiling: decode+preprocess+ORT, 2 processes x 1 thread: {c.images_per_s:.1f} images/s; "
        f"single image p50 {c.single_p50_ms:.1f} ms (1 thread), "
        f"{c.pipeline_1x2['p50_ms']:.1f} ms (2 threads); 1 process: "
        f"{c.pipeline_1x1['images_per_s']:.1f} images/s (1 thread), "
        f"{c.pipeline_1x2['images_per_s']:.1f} (2 threads)\n"
        f"model only (batch 1): {c.model_1x1['images_per_s']:.1f} images/s at 1 thread "
        f"({c.model_1x1['p50_ms']:.2f} ms), {c.model_1x2['images_per_s']:.1f} at 2 threads; "
        f"CPU per image {c.cpu_ms_per_image} ms (2 x 1 thread)"
    )


class Bench:
    """One benchmark run: shared inputs, and what each system produced."""

    def __init__(self, plan: Plan, images: list[Path], expected: dict[str, str]) -> None:
        self.plan = plan
        self.images = images
        self.images_dir = images[0].parent
        self.expected = expected
        self.ceiling: Ceiling | None = None
        self.ceiling_end: dict[str, Any] | None = None
        self.ceiling_stolen: float | None = None  # cores the host took while it was measured
        self.rows: list[dict[str, Any]] = []
        self.systems: dict[str, dict[str, Any]] = {}
        self.int8_report: dict[str, Any] | None = None

    def ratio(self, images_per_s: float) -> float | None:
        return round(images_per_s / self.ceiling.images_per_s, 3) if self.ceiling else None

    def run_system(self, name: str, make_spec: Callable[[], ServerSpec]) -> None:
        """Start, check and load one system; a failure is recorded and the run goes on."""
        record: dict[str, Any] = {}
        self.systems[name] = record
        try:
            spec = make_spec()
            record["settings"] = spec.settings
            with serving(spec, WORK / "logs") as server:
                env = " ".join(f"{k}={v}" for k, v in server.spec.env.items())
                print(f"\n== {name}: {env} {' '.join(server.spec.command)}", flush=True)
                record["ready_s"] = round(server.wait_ready(), 2)
                record["sanity"] = sanity(server, self.images, self.expected)
                record["memory_loaded"] = server.memory()
                print(
                    f"ready in {record['ready_s']} s; top-1 mismatches vs ceiling: "
                    f"{len(record['sanity']['mismatches'])}; RSS with the model loaded: "
                    f"{memory_line(record['memory_loaded'])}"
                )
                print(report.table_header(), flush=True)
                for level in self.plan.levels:
                    row = run_loadgen(
                        server, self.images_dir, level, self.plan.duration_s, self.plan.warmup_s
                    )
                    row = {"system": name, **row, "ratio": self.ratio(row["images_per_s"])}
                    self.rows.append(row)
                    print(report.table_row(row), flush=True)
                record["memory_after"] = server.memory()
        except Exception as exc:  # one broken system must not cost the others' results
            record["error"] = f"{type(exc).__name__}: {exc}"
            print(f"!! {name} failed: {record['error']}", flush=True)
            traceback.print_exc(limit=3)

    def verdicts(self) -> list[str]:
        """Issue 9's targets for each Argus configuration, as plain sentences."""
        if not self.ceiling:
            return []
        lines = []
        peers = {r["system"] for r in self.rows} & set(PEERS)
        mid = 16 if 16 in self.plan.levels else self.plan.levels[-1]
        top = max(self.plan.levels)
        for name in [n for n in self.systems if n not in PEERS]:
            mine = {r["concurrency"]: r for r in self.rows if r["system"] == name}
            if not mine:
                continue
            best_peer = max(
                (
                    r["images_per_s"]
                    for r in self.rows
                    if r["system"] in peers and r["concurrency"] == mid
                ),
                default=0.0,
            )
            if mid in mine:
                ratio = mine[mid]["ratio"]
                ahead = mine[mid]["images_per_s"] > best_peer
                ok = ratio >= 0.90 and ahead
                than = f"best peer {best_peer:.1f} images/s" if peers else "no peer measured"
                lines.append(
                    f"{name}: {'MET ' if ok else 'MISS'} at {mid} clients ratio {ratio:.2f} "
                    f"(target >= 0.90 and ahead of every peer; {than})"
                )
            env = (self.systems[name].get("settings") or {}).get("env") or {}
            if mid in mine and env.get("ARGUS_RUNTIME") == "openvino":
                ratio = mine[mid]["ratio"]
                lines.append(
                    f"{name}: {'MET ' if ratio > 1.0 else 'MISS'} beats the ONNX Runtime "
                    f"ceiling itself at {mid} clients (ratio {ratio:.2f} > 1)"
                )
            if 1 in mine:
                gap = mine[1]["p50_ms"] - self.ceiling.single_p50_ms
                lines.append(
                    f"{name}: {'MET ' if gap <= 2 else 'MISS'} p50 at 1 client "
                    f"{mine[1]['p50_ms']:.1f} ms, {gap:+.1f} ms vs the ceiling "
                    "(target <= +2 ms)"
                )
            if top in mine:
                errors = mine[top]["errors"]
                lines.append(
                    f"{name}: {'MET ' if errors == 0 else 'MISS'} {errors} errors at "
                    f"{top} clients (p99 {mine[top]['p99_ms']:.0f} ms)"
                )
            cpu = report.cpu_ms_per_image(mine[mid]) if mid in mine else None
            if cpu is not None and self.ceiling.cpu_ms_per_image:
                lines.append(
                    f"{name}: server CPU per image {cpu:.1f} ms at {mid} clients vs the "
                    f"ceiling's {self.ceiling.cpu_ms_per_image:.1f} ms "
                    f"(x{cpu / self.ceiling.cpu_ms_per_image:.2f})"
                )
        if self.int8_report is not None:
            mine = {r["concurrency"]: r for r in self.rows if r["system"] == int8.LABEL}
            ratio = mine[mid]["ratio"] if mid in mine else None
            lines += int8.verdict(self.int8_report, ratio, mid)
        return lines


def write_results(
    args: argparse.Namespace, info: dict[str, Any], bench: Bench, elapsed: float
) -> None:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"serving-{stamp}" + ("-quick" if bench.plan.quick else "")
    results = {
        "machine": info,
        "plan": asdict(bench.plan),
        "ceiling": bench.ceiling.as_dict() if bench.ceiling else None,
        "ceiling_at_end": bench.ceiling_end,
        "ceiling_stolen_cores": bench.ceiling_stolen,
        "int8_report": bench.int8_report,
        "systems": bench.systems,
        "rows": bench.rows,
        "elapsed_s": round(elapsed, 1),
        "load_average_at_end": list(os.getloadavg()),
    }
    paths = [args.results_dir / f"{stem}.json"]
    report.write_json(paths[0], results)
    if bench.rows:
        title = f"{report.describe_machine(info)}\n{stem}"
        ceiling = bench.ceiling.images_per_s if bench.ceiling else None
        paths.append(args.results_dir / f"{stem}.png")
        report.plot(paths[1], bench.rows, ceiling, title)
    # Only a full run (every system, every level, the default configurations) is the latest
    # the README shows; a run of a few systems or levels keeps its own files only.
    defaults = parse_args([])
    full = (not bench.plan.quick and not args.argus
            and (args.systems, args.concurrency) == (defaults.systems, defaults.concurrency))
    if full:
        for path in paths:
            shutil.copyfile(path, path.with_name("serving-latest" + path.suffix))
    shown = (p.relative_to(REPO) if p.is_relative_to(REPO) else p for p in paths)
    print("wrote " + ", ".join(str(p) for p in shown))


def soak(args: argparse.Namespace, spec: ServerSpec, bench: Bench, info: dict[str, Any]) -> int:
    """RSS of Argus after loading, after a warm-up, and after ``--soak-requests`` more."""
    n, conc = args.soak_requests, args.soak_concurrency
    warm_n = min(500, max(50, n // 20))
    print(f"\n== soak: {spec.name}, {warm_n} warm-up then {n:,} requests at {conc} clients")
    with serving(spec, WORK / "logs") as server:
        server.wait_ready()
        sanity(server, bench.images, bench.expected)
        loaded = server.memory()
        run_loadgen(server, bench.images_dir, conc, 0, 0, requests=warm_n)
        start = server.memory()
        result = run_loadgen(server, bench.images_dir, conc, 0, 0, requests=n)
        end = server.memory()
    for label, rows in (
        ("loaded", loaded),
        (f"after {warm_n} warm-up", start),
        (f"after {n:,} more", end),
    ):
        print(f"RSS {label:<22} {memory_line(rows)}")
    ends = {r["pid"]: r["rss_mb"] for r in end}
    for row in start:
        if row["pid"] in ends:
            print(
                f"  pid {row['pid']}: {row['rss_mb']:.1f} -> {ends[row['pid']]:.1f} MB "
                f"({ends[row['pid']] - row['rss_mb']:+.1f})"
            )
    print(
        f"{result['ok']:,} ok, {result['errors']} errors, {result['images_per_s']:.1f} "
        f"images/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
    )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.results_dir / f"serving-soak-{stamp}.json"
    report.write_json(
        path,
        {
            "machine": info,
            "system": spec.name,
            "settings": spec.settings,
            "memory": {"loaded": loaded, "start": start, "end": end},
            "load": result,
        },
    )
    print(f"wrote {path.relative_to(REPO)}")
    return 0 if result["errors"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    plan = make_plan(args)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - {"ceiling", "argus", int8.LABEL, *PEERS}
    if unknown:
        raise SystemExit(f"unknown systems: {', '.join(sorted(unknown))}")
    configs: list[ArgusConfig] = args.argus or DEFAULT_ARGUS_CONFIGS
    home = args.argus_home.resolve()
    images = samples.ensure_images(WORK / "images")
    model_dir = ensure_model(home)
    info = report.machine(REPO)
    bench = Bench(plan, images, expected_top1(model_dir, images))
    print(report.describe_machine(info))
    if args.soak:
        return soak(args, argus_spec(configs[0], argus_bin(), home), bench, info)

    specs: list[tuple[str, Callable[[], ServerSpec]]] = []
    for system in systems:
        if system == "argus":
            specs += [(c.label, partial(argus_spec, c, argus_bin(), home)) for c in configs]
        elif system == int8.LABEL:
            int8_home, bench.int8_report = int8.ensure_int8_home(home, WORK, argus_bin(), MODEL)
            config = ArgusConfig(int8.LABEL, (), {"ARGUS_HOME": str(int8_home)})
            specs.append((int8.LABEL, partial(argus_spec, config, argus_bin(), home)))
        elif system in PEERS:
            specs.append((system, partial(peer_spec, PEERS[system], WORK, model_dir)))
    print(
        f"levels {plan.levels} x {plan.duration_s:g} s (+{plan.warmup_s:g} s warm-up); "
        f"{len(specs)} servers; about {plan.estimate_s(len(specs)) / 60:.1f} min "
        "(plus first-time venv installs)",
        flush=True,
    )

    if "ceiling" in systems:
        steal0, t0 = stolen_seconds(), time.perf_counter()
        bench.ceiling = measure_ceiling(model_dir / "model.onnx", images, plan.ceiling_s)
        bench.ceiling_stolen = round((stolen_seconds() - steal0) / (time.perf_counter() - t0), 3)
        print(describe_ceiling(bench.ceiling), flush=True)
        print(f"cores the host took from this machine while the ceiling ran: "
              f"{bench.ceiling_stolen:.2f} (the `stolen` column: the same for each level)",
              flush=True)
    for name, make_spec in specs:
        bench.run_system(name, make_spec)
    if bench.ceiling and specs:
        # Re-measured last: a drift means other work shared the CPU and the ratios are off.
        bench.ceiling_end = measure(
            "pipeline", model_dir / "model.onnx", images, 2, 1, plan.ceiling_s
        )

    elapsed = time.perf_counter() - started
    print(f"\n== results ({elapsed / 60:.1f} min); {report.describe_machine(info)}")
    if bench.ceiling:
        print(describe_ceiling(bench.ceiling))
    if bench.ceiling and bench.ceiling_end:
        end = bench.ceiling_end["images_per_s"]
        drift = end / bench.ceiling.images_per_s - 1
        warning = (
            "  << the machine was not quiet: ratios are unreliable" if abs(drift) > 0.1 else ""
        )
        print(f"ceiling re-measured at the end: {end:.1f} images/s ({drift:+.0%}){warning}")
    print(report.table(bench.rows))
    if bench.rows:
        client = [r["client_cpu_cores"] for r in bench.rows]
        print(
            f"load generator CPU: {min(client):.2f}-{max(client):.2f} cores "
            f"({min(client) / CORES:.0%}-{max(client) / CORES:.0%} of the machine)"
        )
    for name, record in bench.systems.items():
        if "error" in record:
            print(f"{name}: FAILED {record['error'].splitlines()[0]}")
    for line in bench.verdicts():
        print(line)
    write_results(args, info, bench, elapsed)
    return 1 if any("error" in r for r in bench.systems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
