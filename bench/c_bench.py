"""Benchmark of the C export on a Cortex-M4 (not a test): prints tables.

For an export made with `kws export RUN --target c`, builds the spotter with
arm-none-eabi-gcc (-O2 and -Os, with the Armv7E-M DSP instructions and without them) and
counts executed instructions under qemu-system-arm -M mps2-an386 with the instruction
counting plugin of ../shared/tools/qemu-insncount (a measuring instrument, not part of the
product). Instructions per inference are inclusive (the difference between a program that
runs the call three times and one that runs it once, halved); the per-function split counts
each kernel's own instructions (its address window) in one inference. QEMU counts
instructions, not cycles.

Also prints the flash and RAM figures the export measured (report.json), and the
TensorFlow Lite Micro figures that can be measured here (model bytes and tensor arena on
the host; TFLM's interpreter cannot be built for a Cortex-M4 on this machine: its sources
are on GitHub, which is not reachable).

The measured counts are also written into RUN_DIR/export/report.json under
``c.cortex_m4_instructions`` (with the instrument named), beside the export's own figures.

Usage: python bench/c_bench.py RUN_DIR [--plugin PATH/insncount.c]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from kws.export import cortexm
from kws.runs import write_json

TOOLS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "qemu-insncount"
MODES = {
    "spotter (kws_classify)": "kws_classify(clip, scores);",
    "front end (kws_features)": "kws_features(clip, features, scratch);",
    "model (kws_model_invoke)": "kws_model_invoke(arena);",
}
KERNELS = (
    "kws_features",
    "kws_conv_s8",
    "kws_matmul_s8",
    "kws_depthwise_s8",
    "kws_mean_hw_s8",
    "kws_avg_pool_s8",
    "kws_softmax_s8",
    "memcpy",
    "memset",
)

MAIN = """#include <stdint.h>
#include <string.h>

#include "kws.h"
#include "kws_features.h"
#include "kws_model.h"

static int16_t clip[KWS_CLIP_SAMPLES];
static int8_t features[KWS_NUM_FRAMES * KWS_NUM_COEFFICIENTS];
static uint32_t scratch[(KWS_FEATURES_SCRATCH_BYTES + 3) / 4];
static uint8_t arena[KWS_MODEL_ARENA_BYTES] __attribute__((aligned(8)));

int main(void) {
  int8_t scores[KWS_NUM_LABELS];
  uint32_t x = 12345u;
  for (int i = 0; i < KWS_CLIP_SAMPLES; ++i) { /* a deterministic noisy clip */
    x = x * 1664525u + 1013904223u;
    clip[i] = (int16_t)((int32_t)(x >> 16) - 32768) / 4;
  }
  (void)scores; (void)features; (void)scratch; (void)arena;
  for (int r = 0; r < REPEAT; ++r) {
    CALL
  }
  return 0;
}
"""


def _macs(c_dir: Path) -> int:
    match = re.search(r"(\d+) MACs per inference", (c_dir / "kws_model.h").read_text())
    if not match:
        sys.exit(f"{c_dir / 'kws_model.h'}: no MAC count")
    return int(match.group(1))


def _program(
    c_dir: Path, build: Path, call: str, repeat: int, opt: str, dsp: bool, tag: str
) -> Path:
    main = build / f"main_{tag}_{repeat}.c"
    main.write_text(MAIN.replace("REPEAT", str(repeat)).replace("CALL", call))
    return cortexm.build_elf(
        [*sorted(c_dir.glob("*.c")), main],
        build / f"{tag}_{repeat}.elf",
        include_dirs=[c_dir],
        opt=opt,
        defines=() if dsp else ("KWS_NO_DSP",),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--plugin", type=Path, default=TOOLS / "insncount.c")
    args = parser.parse_args()
    c_dir = args.run_dir / "export" / "c"
    if not (c_dir / "kws_model.c").exists():
        sys.exit(f"{c_dir}: no C export; run `kws export {args.run_dir} --target c` first")
    if cortexm.find_toolchain() is None:
        sys.exit(f"missing: {cortexm.missing_tools()}")
    if not args.plugin.exists():
        sys.exit(f"{args.plugin}: instruction counting plugin source not found")
    macs = _macs(c_dir)
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        plugin = cortexm.build_plugin(args.plugin, build / "plugin")
        print(f"Cortex-M4 (QEMU {cortexm.MACHINE}), {macs:,} MACs per inference\n")
        print(f"{'build':<22}{'part':<28}{'instructions':>14}{'per MAC':>9}")
        split = {}
        measured: dict[str, dict[str, float]] = {}
        for opt in ("-O2", "-Os"):
            for dsp in (True, False):
                label = f"{opt} {'DSP (SMLAD)' if dsp else 'plain C'}"
                for part, call in MODES.items():
                    counts = []
                    for repeat in (1, 3):
                        tag = f"{opt[1:]}{int(dsp)}{len(call)}"
                        elf = _program(c_dir, build, call, repeat, opt, dsp, tag)
                        counts.append(cortexm.run_qemu(elf, timeout_s=600, plugin=plugin).insns)
                    per = (counts[1] - counts[0]) / 2
                    per_mac = f"{per / macs:.2f}" if "model" in part else ""
                    print(f"{label:<22}{part:<28}{per:>14,.0f}{per_mac:>9}")
                    measured.setdefault(label, {})[part.split(" (")[0]] = per
                if opt == "-O2" and dsp:
                    elf = _program(c_dir, build, MODES["spotter (kws_classify)"], 1, opt, dsp, "k")
                    sizes = cortexm.symbol_sizes(elf)
                    for name in KERNELS:
                        if name in sizes:
                            lo, hi = cortexm.symbol_range(elf, name)
                            run = cortexm.run_qemu(
                                elf, timeout_s=600, plugin=plugin, plugin_args={"lo": lo, "hi": hi}
                            )
                            split[name] = run.window
        print("\nown instructions per inference by function (-O2, DSP):")
        for name, count in split.items():
            print(f"  {name:<20}{count:>12,}")
    report_path = args.run_dir / "export" / "report.json"
    report = json.loads(report_path.read_text())
    if "c" in report:
        report["c"]["cortex_m4_instructions"] = {
            "instrument": "qemu-system-arm -M mps2-an386 + qemu-insncount plugin (benchmark)",
            "macs": macs,
            "per_inference": measured,
            "model_per_mac": {k: v["model"] / macs for k, v in measured.items()},
            "own_instructions_O2_dsp": split,
        }
        write_json(report_path, report)
    arm = report.get("c", {}).get("cortex_m4", {})
    if "flash_bytes" in arm:
        print(
            f"\nC spotter ({arm['optimisation']}): flash {arm['flash_bytes']:,} B, RAM "
            f"{arm['ram_bytes']:,} B ({arm['static_ram_bytes']:,} static + "
            f"{arm['stack_bytes']:,} stack)"
        )
    if "int8" in report:
        print(
            f"TensorFlow Lite Micro: model {report['int8']['bytes']:,} B (flatbuffer), tensor "
            f"arena {report['int8']['arena_bytes']:,} B (measured on the host); interpreter "
            "and kernels on a Cortex-M4: not buildable here (TFLM's sources are not reachable)"
        )


if __name__ == "__main__":
    main()
