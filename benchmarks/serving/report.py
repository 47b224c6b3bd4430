"""What a run leaves behind: the machine's description, the table, results JSON and a plot."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0


def _git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "src") else "")


def machine(repo: Path) -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "onnxruntime": version("onnxruntime"),
        "numpy": version("numpy"),
        "pillow": version("pillow"),
        "httpx": version("httpx"),
        "argus_commit": _git_commit(repo),
        "load_average_at_start": list(os.getloadavg()),
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; "
        f"Python {info['python']}, onnxruntime {info['onnxruntime']}, "
        f"Argus {info['argus_commit']}; load average at start "
        + " ".join(f"{x:.2f}" for x in info["load_average_at_start"])
    )


COLUMNS = [
    ("system", "{:<14}"),
    ("conc", "{:>4}"),
    ("img/s", "{:>7}"),
    ("p50 ms", "{:>7}"),
    ("p99 ms", "{:>8}"),
    ("errors", "{:>6}"),
    ("ratio", "{:>5}"),
    ("client cpu", "{:>10}"),
    ("server cpu", "{:>10}"),
    ("cpu ms/img", "{:>10}"),
    ("stolen", "{:>6}"),
]


def cpu_ms_per_image(row: dict[str, Any]) -> float | None:
    """The server's CPU (its whole process tree) per answered image, in ms: beside the
    ceiling's, it shows where serving costs more than the work itself."""
    if not row.get("images_per_s") or "server_cpu_cores" not in row:
        return None
    return 1000.0 * float(row["server_cpu_cores"]) / float(row["images_per_s"])


def table_header() -> str:
    cells = [fmt.format(name) for name, fmt in COLUMNS]
    return "  ".join(cells)


def table_row(row: dict[str, Any]) -> str:
    values = [
        row["system"],
        row["concurrency"],
        f"{row['images_per_s']:.1f}",
        f"{row['p50_ms']:.1f}",
        f"{row['p99_ms']:.1f}",
        row["errors"],
        f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-",
        f"{row['client_cpu_cores']:.2f}" if "client_cpu_cores" in row else "-",
        f"{row['server_cpu_cores']:.2f}" if "server_cpu_cores" in row else "-",
        f"{cpu_ms_per_image(row):.1f}" if cpu_ms_per_image(row) is not None else "-",
        f"{row['stolen_cores']:.2f}" if "stolen_cores" in row else "-",
    ]
    return "  ".join(fmt.format(v) for (_, fmt), v in zip(COLUMNS, values, strict=True))


def table(rows: list[dict[str, Any]]) -> str:
    return "\n".join([table_header(), *(table_row(r) for r in rows)])


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(path: Path, rows: list[dict[str, Any]], ceiling: float | None, title: str) -> None:
    """Throughput and p99 against concurrency, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig, (ax_tput, ax_p99) = plt.subplots(1, 2, figsize=(12, 4.8))
    for system in systems:
        mine = sorted((r for r in rows if r["system"] == system), key=lambda r: r["concurrency"])
        conc = [r["concurrency"] for r in mine]
        ax_tput.plot(conc, [r["images_per_s"] for r in mine], marker="o", label=system)
        ax_p99.plot(conc, [r["p99_ms"] for r in mine], marker="o", label=system)
    if ceiling:
        ax_tput.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="ceiling")
    for ax, ylabel in ((ax_tput, "images/s"), (ax_p99, "p99 latency, ms")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(sorted({r["concurrency"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax_tput.set_ylim(bottom=0)
    ax_p99.set_yscale("log")
    ax_tput.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
