"""Building C programs for a Cortex-M4 and running them on QEMU's emulated board.

In: C sources (plus the start-up file in ``csrc/cortexm_startup.c``, always linked), the GNU
Arm toolchain and ``qemu-system-arm``. Out: an ELF for QEMU's ``mps2-an386`` board
(Cortex-M4 with single-precision FPU, hard-float ABI); what the program printed and its exit
status, run with semihosting so that ``printf`` and ``exit`` reach the host; its flash and
RAM from ``arm-none-eabi-size``; symbol sizes and address ranges from ``arm-none-eabi-nm``;
and, given an instruction-counting QEMU plugin (a benchmark instrument kept outside this
package, passed in by path), the number of executed instructions, in total and inside one
address window (one function).

QEMU counts instructions, not cycles: a count is a model-independent cost figure, not a
latency. Failures raise `BuildError` (one line: the failing file and the compiler's or
linker's first error) or `QemuError` (a fault, a non-zero exit or a timeout, with the tail of
the program's output); both keep the tools' full output in ``.output``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kws.fsutil import atomic_path

__all__ = [
    "MACHINE",
    "STARTUP_SOURCE",
    "BuildError",
    "CortexMError",
    "QemuError",
    "QemuRun",
    "Toolchain",
    "build_elf",
    "build_plugin",
    "find_toolchain",
    "missing_tools",
    "run_qemu",
    "section_sizes",
    "sized_symbols",
    "symbol_range",
    "symbol_sizes",
]

MACHINE = "mps2-an386"  # Cortex-M4F; mps2-an385 is an M3, mps2-an500 an M7
STARTUP_SOURCE = Path(__file__).with_name("csrc") / "cortexm_startup.c"
VECTOR_TABLE_SYMBOL = "kws_vector_table"  # defined in STARTUP_SOURCE
VECTOR_TABLE_ADDRESS = 0x0

# program name -> Debian package that provides it
DEBIAN_PACKAGES: dict[str, str] = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "arm-none-eabi-nm": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
}
NEWLIB_SPECS = "rdimon.specs"  # newlib with semihosting I/O
NEWLIB_PACKAGE = "libnewlib-arm-none-eabi"

TARGET_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# -std=c99 also turns off floating-point contraction (GCC's default for ISO modes), so that
# `a * b + c` rounds twice, as on a host without FMA: results compare bit for bit.
C_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections")
LINK_FLAGS = (
    f"--specs={NEWLIB_SPECS}",
    "-Wl,--gc-sections",
    f"-Wl,--section-start=.isr_vector={VECTOR_TABLE_ADDRESS:#x}",
    f"-Wl,--undefined={VECTOR_TABLE_SYMBOL}",
)
LIBRARIES = ("-lm",)
OPT_LEVELS = frozenset({"-O0", "-O1", "-O2", "-O3", "-Os", "-Oz", "-Og"})
SOURCE_SUFFIXES = frozenset({".c", ".S"})
PLUGIN_FLAGS = ("-O2", "-shared", "-fPIC")
OUTPUT_TAIL_CHARS = 2000
TOOL_TIMEOUT_S = 600.0

_DIAGNOSTIC = re.compile(r"^(?P<where>[^\s:][^:]*:\d+(?::\d+)?): (?:fatal )?error: (?P<what>.*)$")
_LINK_DIAGNOSTIC = re.compile(r"^(?P<where>[^\s:][^:]*):\([^)]*\): (?P<what>.*)$")
_PLUGIN_ARG_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_PLUGIN_COUNTS = {"insns": "insns", "insns_in_window": "window", "window": "window"}


class CortexMError(RuntimeError):
    """Building or running a Cortex-M program failed; ``output`` holds the tools' full output."""

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class BuildError(CortexMError):
    """The compiler or the linker rejected a program."""


class QemuError(CortexMError):
    """A program faulted, exited with a non-zero status or did not finish in time."""


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the programs this module runs."""

    gcc: Path
    size: Path
    nm: Path
    qemu: Path


@dataclass(frozen=True)
class QemuRun:
    """One run of an ELF under QEMU.

    ``insns``: all instructions executed (start-up and printing included); ``window``: those
    executed inside the plugin's ``lo``..``hi`` window; ``mnemonics``: per-mnemonic counts
    with the plugin's ``hist=1``. None (empty) when not measured.
    """

    elf: Path
    stdout: str
    stderr: str
    returncode: int
    wall_s: float
    insns: int | None = None
    window: int | None = None
    mnemonics: Mapping[str, int] = field(default_factory=dict)


def _has_newlib(gcc: str) -> bool:
    found = subprocess.run(
        [gcc, *TARGET_FLAGS, f"-print-file-name={NEWLIB_SPECS}"],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    ).stdout.strip()
    return Path(found).is_absolute() and Path(found).exists()


def missing_tools() -> dict[str, str]:
    """What is missing to build and run Cortex-M programs: program or file -> Debian package.

    Empty when everything is installed."""
    missing = {name: pkg for name, pkg in DEBIAN_PACKAGES.items() if shutil.which(name) is None}
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is not None and not _has_newlib(gcc):
        missing[NEWLIB_SPECS] = NEWLIB_PACKAGE
    return missing


def find_toolchain() -> Toolchain | None:
    """The installed toolchain and emulator, or None when anything in `missing_tools` lacks."""
    if missing_tools():
        return None
    paths = {name: shutil.which(name) for name in DEBIAN_PACKAGES}
    return Toolchain(
        gcc=Path(paths["arm-none-eabi-gcc"] or ""),
        size=Path(paths["arm-none-eabi-size"] or ""),
        nm=Path(paths["arm-none-eabi-nm"] or ""),
        qemu=Path(paths["qemu-system-arm"] or ""),
    )


def _require(toolchain: Toolchain | None) -> Toolchain:
    """``toolchain``, or the installed one (`find_toolchain`); raises naming what to install."""
    found = toolchain or find_toolchain()
    if found is None:
        wanted = ", ".join(f"{name} (Debian: {pkg})" for name, pkg in missing_tools().items())
        raise CortexMError(f"the Cortex-M toolchain is incomplete; install {wanted}")
    return found


def _first_error(stderr: str) -> str:
    """The compiler's or linker's first error as one line (the first line, failing that)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if match := _DIAGNOSTIC.match(line):
            return f"{match['where']}: {match['what']}"
    for line in lines:
        if (match := _LINK_DIAGNOSTIC.match(line)) and "in function" not in line:
            return f"{match['where']}: {match['what']}"
    for line in lines:
        if "error" in line.lower() or "undefined reference" in line:
            return line
    return lines[0] if lines else "no diagnostic printed"


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_TAIL_CHARS else "..." + text[-OUTPUT_TAIL_CHARS:]


def build_elf(
    sources: Sequence[Path],
    out_elf: Path,
    *,
    include_dirs: Sequence[Path] = (),
    defines: Sequence[str] = (),
    opt: str = "-O2",
    toolchain: Toolchain | None = None,
) -> Path:
    """Compile and link ``sources`` with the start-up file into ``out_elf`` for QEMU's M4.

    Parameters
    ----------
    sources : C (``.c``) or preprocessed assembly (``.S``) files; one must define ``main``.
    out_elf : written atomically (a failed build leaves any earlier file untouched).
    include_dirs : ``-I`` directories.
    defines : ``NAME`` or ``NAME=VALUE``, passed as ``-D``.
    opt : one of `OPT_LEVELS`, e.g. ``"-O2"`` or ``"-Os"``.

    Returns ``out_elf``. Raises `BuildError` naming the failing file and the first error
    (warnings are errors), ``ValueError`` for a bad argument.
    """
    if opt not in OPT_LEVELS:
        raise ValueError(f"opt {opt!r} is not one of {sorted(OPT_LEVELS)}")
    if not sources:
        raise ValueError("no sources given; at least the file with main() is needed")
    for define in defines:
        if not define or define.startswith("-") or any(c.isspace() for c in define):
            raise ValueError(f"define {define!r} is not NAME or NAME=VALUE")
    files = []
    for source in (*sources, STARTUP_SOURCE):
        path = Path(source).resolve()
        if path.suffix not in SOURCE_SUFFIXES:
            raise ValueError(f"{source}: not a C or .S source (suffix one of {SOURCE_SUFFIXES})")
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no such source file")
        if path not in files:
            files.append(path)
    toolchain = _require(toolchain)
    out_elf = Path(out_elf)
    with atomic_path(out_elf) as tmp:
        command = [
            str(toolchain.gcc),
            *TARGET_FLAGS,
            opt,
            *C_FLAGS,
            *(f"-I{d}" for d in include_dirs),
            *(f"-D{d}" for d in defines),
            *map(str, files),
            *LINK_FLAGS,
            *LIBRARIES,
            "-o",
            str(tmp),
        ]
        _run_tool(command, f"building {out_elf.name} ({opt})", BuildError)
    return out_elf


def _run_tool(command: Sequence[str], what: str, error: type[CortexMError] = CortexMError) -> str:
    """Run a compiler or binutils program; its stdout, or ``error`` naming ``what`` failed
    with the first error line."""
    done = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TOOL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise error(f"{what} failed: {_first_error(done.stderr)}", output=done.stderr)
    return done.stdout


def _plugin_option(plugin: Path, args: Mapping[str, int | str]) -> str:
    parts = [str(plugin)]
    for key, value in args.items():
        text = str(int(value)) if isinstance(value, int) else str(value)  # bools as 1/0
        if not _PLUGIN_ARG_KEY.match(key) or "," in text or not text:
            raise ValueError(f"plugin argument {key}={value!r} is not a plain key=value")
        parts.append(f"{key}={text}")
    return ",".join(parts)


def _parse_plugin_log(text: str) -> tuple[dict[str, int], dict[str, int]]:
    counts: dict[str, int] = {}
    mnemonics: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].endswith(":") and words[0][:-1] in _PLUGIN_COUNTS:
            counts[_PLUGIN_COUNTS[words[0][:-1]]] = int(words[1])
        elif len(words) == 3 and words[0] == "mnemonic":
            mnemonics[words[1]] = mnemonics.get(words[1], 0) + int(words[2])
    return counts, mnemonics


def run_qemu(
    elf: Path,
    *,
    timeout_s: float,
    toolchain: Toolchain | None = None,
    plugin: Path | None = None,
    plugin_args: Mapping[str, int | str] | None = None,
    check: bool = True,
) -> QemuRun:
    """Run ``elf`` on QEMU's `MACHINE` with semihosting, stdin from /dev/null.

    ``plugin``: an instruction-counting TCG plugin (.so); ``plugin_args`` its options, e.g.
    ``{"lo": lo, "hi": hi, "hist": 1}`` with ``lo``/``hi`` from `symbol_range` (integers and
    bools are written in decimal).
    ``check``: raise `QemuError` on a non-zero exit status (a fault exits with status 1 and
    prints the faulting pc on stderr); without it the status is returned.
    Raises `QemuError` when the program does not exit within ``timeout_s`` seconds (a hang,
    or a lockup the start-up file cannot report).
    """
    elf = Path(elf)
    if not elf.is_file():
        raise FileNotFoundError(f"{elf}: no such ELF file")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if plugin_args and plugin is None:
        raise ValueError("plugin_args given without a plugin")
    toolchain = _require(toolchain)
    command = [
        str(toolchain.qemu),
        "-M",
        MACHINE,
        "-nographic",
        "-semihosting",
        "-kernel",
        str(elf),
    ]
    with tempfile.TemporaryDirectory(prefix="kws-qemu-") as tmp:
        log = Path(tmp) / "plugin.log"
        if plugin is not None:
            if not Path(plugin).is_file():
                raise FileNotFoundError(f"{plugin}: no such QEMU plugin")
            option = _plugin_option(Path(plugin).resolve(), plugin_args or {})
            command += ["-plugin", option, "-d", "plugin", "-D", str(log)]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            seen = _as_text(exc.stdout) + _as_text(exc.stderr)
            raise QemuError(
                f"{elf.name} did not exit within {timeout_s:g} s under QEMU (a hang, or a "
                f"lockup); output so far: {_tail(seen) or '(none)'}",
                output=seen,
            ) from None
        wall_s = time.perf_counter() - start
        plugin_log = log.read_text(errors="replace") if log.exists() else ""
    if check and done.returncode != 0:
        raise QemuError(
            f"{elf.name} exited with status {done.returncode} under QEMU; output tail: "
            f"{_tail(done.stdout + done.stderr) or '(none)'}",
            output=done.stdout + done.stderr,
        )
    counts: dict[str, int] = {}
    mnemonics: dict[str, int] = {}
    if plugin is not None:
        counts, mnemonics = _parse_plugin_log(plugin_log)
        if "insns" not in counts:
            raise QemuError(
                f"the plugin {Path(plugin).name} wrote no 'insns:' count for {elf.name}; "
                f"its log: {_tail(plugin_log) or '(empty)'}",
                output=plugin_log,
            )
    return QemuRun(
        elf=elf,
        stdout=done.stdout,
        stderr=done.stderr,
        returncode=done.returncode,
        wall_s=wall_s,
        insns=counts.get("insns"),
        window=counts.get("window"),
        mnemonics=mnemonics,
    )


def _as_text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _tool_output(command: Sequence[str]) -> str:
    return _run_tool(command, f"{Path(command[0]).name} on {command[-1]}")


def section_sizes(elf: Path, *, toolchain: Toolchain | None = None) -> dict[str, int]:
    """Bytes of ``text`` (code and constants), ``data`` (initialised variables) and ``bss``
    (zeroed variables), as ``arm-none-eabi-size`` counts them, with ``flash = text + data``
    and ``ram = data + bss``. Stack and heap are not included in ``ram``."""
    toolchain = _require(toolchain)
    lines = _tool_output([str(toolchain.size), "--format=berkeley", str(elf)]).splitlines()
    if len(lines) < 2 or lines[0].split()[:3] != ["text", "data", "bss"]:
        raise CortexMError(f"{elf}: unexpected arm-none-eabi-size output {lines!r}")
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


def sized_symbols(elf: Path, toolchain: Toolchain | None = None) -> list[tuple[str, int, int, str]]:
    """(name, address, size, type letter) of every symbol with a size."""
    toolchain = _require(toolchain)
    rows = []
    for line in _tool_output([str(toolchain.nm), "-S", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 4:
            address, size, kind, name = parts
            rows.append((name, int(address, 16), int(size, 16), kind))
    return rows


def symbol_range(elf: Path, name: str, *, toolchain: Toolchain | None = None) -> tuple[int, int]:
    """Address window ``[lo, hi)`` of symbol ``name``, e.g. the plugin's ``lo``/``hi`` for
    counting the instructions of one function. The function must not be inlined (mark it
    ``__attribute__((noinline))``) or it has no symbol of its own."""
    found = [row for row in sized_symbols(elf, toolchain) if row[0] == name]
    if not found:
        raise CortexMError(
            f"{elf.name} has no sized symbol {name!r} (inlined, removed by --gc-sections, "
            "or misspelt?)"
        )
    if len(found) > 1:
        raise CortexMError(f"{elf.name} has {len(found)} symbols named {name!r} (static?)")
    _, address, size, _ = found[0]
    lo = address & ~1  # a Thumb function's value may carry bit 0
    return lo, lo + size


def symbol_sizes(elf: Path, *, toolchain: Toolchain | None = None) -> dict[str, int]:
    """Bytes of every sized symbol in ``elf`` (code and data; same-named static symbols are
    summed), for splitting flash and RAM by name prefix."""
    sizes: dict[str, int] = {}
    for name, _, size, _ in sized_symbols(elf, toolchain):
        sizes[name] = sizes.get(name, 0) + size
    return sizes


def build_plugin(source: Path, out_dir: Path, *, cc: str = "cc") -> Path:
    """Compile a QEMU TCG plugin ``source`` into ``out_dir/lib<stem>.so``; reuse the file
    when it is newer than the source."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such plugin source")
    out = Path(out_dir) / f"lib{source.stem}.so"
    if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
        return out
    compiler = shutil.which(cc)
    if compiler is None:
        raise BuildError(f"host C compiler {cc!r} not found (Debian: gcc)")
    with atomic_path(out) as tmp:
        _run_tool(
            [compiler, *PLUGIN_FLAGS, "-o", str(tmp), str(source)],
            f"building the plugin {source.name}",
            BuildError,
        )
    return out
