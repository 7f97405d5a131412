"""kws.export.cortexm: C programs built for a Cortex-M4 and run on QEMU print what the host
prints; faults, aborts and hangs end in clear errors; sizes and instruction counts add up."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kws.export.cortexm import (
    BuildError,
    QemuError,
    Toolchain,
    build_elf,
    build_plugin,
    find_toolchain,
    missing_tools,
    run_qemu,
    section_sizes,
    symbol_range,
    symbol_sizes,
)

TIMEOUT_S = 20.0
HANG_TIMEOUT_S = 1.0
PLUGIN_SOURCE = Path(
    os.environ.get("KWS_QEMU_INSNCOUNT", "/work/shared/tools/qemu-insncount/insncount.c")
)
HOST_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
DOT_LENGTH = 64
DSP_ROUNDS = 8

# int8 dot products with a requantising shift and clamp, float arithmetic (products, sums,
# division, sqrt: all correctly rounded in IEEE single precision) printed as exact bits.
PARITY_PROGRAM = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N 97
static uint32_t state = 12345u;
static uint32_t next_random(void) {
    state = state * 1664525u + 1013904223u;
    return state;
}
static int32_t dot(const int8_t *a, const int8_t *b, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}
static int8_t requantize(int32_t acc, int shift) {
    int32_t q = (acc + (1 << (shift - 1))) >> shift;
    return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}
static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
int main(void) {
    int8_t a[N], w[4][N];
    for (int i = 0; i < N; i++) a[i] = (int8_t)(next_random() >> 24);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < N; i++) w[k][i] = (int8_t)(next_random() >> 24);
    w[3][0] = -128;
    a[0] = -128;
    for (int k = 0; k < 4; k++) {
        int32_t acc = dot(a, w[k], N - k);
        printf("dot %d %ld %d\n", k, (long)acc, (int)requantize(acc, 7 + k));
    }
    float y = 0.0f, z = 1.0f;
    for (int i = 0; i < 64; i++) {
        float f = (float)a[i] * 0.0078125f;
        y = y * 0.97f + f * f;
        z += sqrtf(y + 1.0f) / (1.0f + (float)i);
    }
    printf("float %08lx %08lx %.9g %.9g\n", (unsigned long)bits(y), (unsigned long)bits(z),
           (double)y, (double)z);
    return 0;
}
"""

CRASH_PROGRAMS = {
    "bad_pointer": r"""
#include <stdint.h>
#include <stdio.h>
int main(void) {
    volatile uint32_t *bad = (volatile uint32_t *)0x50000000u;
    printf("before\n");
    printf("%lu\n", (unsigned long)*bad);
    return 0;
}
""",
    "abort": r"""
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    printf("before\n");
    abort();
}
""",
}

SIZES_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
const int8_t kws_table[TABLE_BYTES] = {1};
int8_t kws_scratch[4096];
int main(void) {
    volatile int i = TABLE_BYTES - 1;
    kws_scratch[i % 4096] = kws_table[i];
    printf("%d\n", kws_scratch[i % 4096]);
    return 0;
}
"""

LOOP_PROGRAM = r"""
__attribute__((noinline, noipa)) void kws_work(void) {
    for (volatile int i = 0; i < 10; i++) {
    }
}
int main(void) {
    for (int k = 0; k < CALLS; k++) kws_work();
    return 0;
}
"""

# The Cortex-M4 DSP extension through ACLE intrinsics: four int8 products per pair of SMLADs.
DSP_PROGRAM = r"""
#include <arm_acle.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef __ARM_FEATURE_DSP
#error "__ARM_FEATURE_DSP is not defined"
#endif
#define LENGTH DOT_LENGTH
#define ROUNDS DSP_ROUNDS

static uint32_t state = 7u;
static uint32_t next_random(void) {
    state = state * 1664525u + 1013904223u;
    return state;
}
static uint32_t rotate8(uint32_t x) { return (x >> 8) | (x << 24); }

__attribute__((noinline, noipa)) int32_t kws_dot_c(const int8_t *a, const int8_t *b, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}
/* n a multiple of 4; a and b 4-byte aligned */
__attribute__((noinline, noipa)) int32_t kws_dot_dsp(const int8_t *a, const int8_t *b, int n) {
    int32_t acc = 0;
    for (int i = 0; i < n; i += 4) {
        uint32_t wa, wb;
        memcpy(&wa, a + i, sizeof wa);
        memcpy(&wb, b + i, sizeof wb);
        acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
        acc = __smlad(__sxtb16(rotate8(wa)), __sxtb16(rotate8(wb)), acc);
    }
    return acc;
}
int main(void) {
    static int8_t a[LENGTH] __attribute__((aligned(4)));
    static int8_t b[LENGTH] __attribute__((aligned(4)));
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < LENGTH; i++) {
            a[i] = (int8_t)(next_random() >> 24);
            b[i] = (int8_t)(next_random() >> 24);
        }
        if (round == 0) memset(a, 0x80, LENGTH), memset(b, 0x80, LENGTH);
        int32_t plain = kws_dot_c(a, b, LENGTH), dsp = kws_dot_dsp(a, b, LENGTH);
        if (plain != dsp) {
            printf("round %d: plain %ld dsp %ld\n", round, (long)plain, (long)dsp);
            bad++;
        }
    }
    volatile int32_t big = 300, small = -300;
    if (__ssat(big, 8) != 127 || __ssat(small, 8) != -128) {
        printf("ssat wrong\n");
        bad++;
    }
    printf("%s\n", bad ? "MISMATCH" : "dsp ok");
    return bad;
}
"""


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    found = find_toolchain()
    if found is None:
        missing = ", ".join(f"{name} (Debian: {pkg})" for name, pkg in missing_tools().items())
        pytest.skip(f"Cortex-M toolchain incomplete, missing {missing}")
    return found


@pytest.fixture(scope="module")
def plugin(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PLUGIN_SOURCE.is_file():
        pytest.skip(f"instruction-count plugin source {PLUGIN_SOURCE} absent (KWS_QEMU_INSNCOUNT)")
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler `cc` to build the QEMU plugin")
    del toolchain  # the plugin is of no use without QEMU: skip with the toolchain
    return build_plugin(PLUGIN_SOURCE, tmp_path_factory.mktemp("plugin"))


def _source(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _host_stdout(source: Path, tmp_path: Path) -> str:
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler `cc`")
    exe = tmp_path / "host_prog"
    subprocess.run(["cc", *HOST_FLAGS, str(source), "-lm", "-o", str(exe)], check=True)
    return subprocess.run([exe], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_m4_prints_what_the_host_prints(toolchain: Toolchain, tmp_path: Path, opt: str) -> None:
    source = _source(tmp_path, "parity.c", PARITY_PROGRAM)
    elf = build_elf([source], tmp_path / "parity.elf", opt=opt, toolchain=toolchain)
    run = run_qemu(elf, timeout_s=TIMEOUT_S, toolchain=toolchain)
    assert run.returncode == 0
    assert run.insns is None and run.window is None
    assert run.stdout.count("dot ") == 4 and "float " in run.stdout
    assert run.stdout == _host_stdout(source, tmp_path)


def test_exit_status_is_returned_unchecked(toolchain: Toolchain, tmp_path: Path) -> None:
    source = _source(tmp_path, "three.c", "int main(void) { return 3; }\n")
    elf = build_elf([source], tmp_path / "three.elf", toolchain=toolchain)
    assert run_qemu(elf, timeout_s=TIMEOUT_S, toolchain=toolchain, check=False).returncode == 3
    with pytest.raises(QemuError, match=r"three\.elf exited with status 3"):
        run_qemu(elf, timeout_s=TIMEOUT_S, toolchain=toolchain)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_pointer", r"(?s)status 1 .*before.*fault: exception 0x00000003 pc=0x"),
        ("abort", r"status 1 .*before"),
    ],
)
def test_crash_is_a_clear_error(
    toolchain: Toolchain, tmp_path: Path, name: str, expected: str
) -> None:
    source = _source(tmp_path, f"{name}.c", CRASH_PROGRAMS[name])
    elf = build_elf([source], tmp_path / f"{name}.elf", toolchain=toolchain)
    with pytest.raises(QemuError, match=expected):
        run_qemu(elf, timeout_s=TIMEOUT_S, toolchain=toolchain)


def test_hang_is_a_timeout_error(toolchain: Toolchain, tmp_path: Path) -> None:
    source = _source(
        tmp_path,
        "hang.c",
        "#include <stdio.h>\nint main(void) {\n    volatile int spin = 1;\n"
        '    printf("spinning\\n");\n    while (spin) {\n    }\n    return 0;\n}\n',
    )
    elf = build_elf([source], tmp_path / "hang.elf", toolchain=toolchain)
    with pytest.raises(QemuError, match=r"hang\.elf did not exit within 1 s"):
        run_qemu(elf, timeout_s=HANG_TIMEOUT_S, toolchain=toolchain)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int main(void) { return missing; }\n", r"\S*/broken\.c:1:\d+: .missing. undeclared"),
        ("int main(void) { int unused; return 0; }\n", r"\S*/broken\.c:1:\d+: unused variable"),
        (
            "int helper(void);\nint main(void) { return helper(); }\n",
            r"broken\.c: undefined reference to .helper.",
        ),
    ],
)
def test_build_error_names_file_and_first_error(
    toolchain: Toolchain, tmp_path: Path, text: str, expected: str
) -> None:
    source = _source(tmp_path, "broken.c", text)
    out = tmp_path / "broken.elf"
    with pytest.raises(BuildError, match=r"building broken\.elf \(-O2\) failed: " + expected):
        build_elf([source], out, toolchain=toolchain)
    assert not out.exists()
    assert list(tmp_path.glob("*.partial*")) == []


def test_bad_arguments_are_rejected(toolchain: Toolchain, tmp_path: Path) -> None:
    source = _source(tmp_path, "ok.c", "int main(void) { return 0; }\n")
    with pytest.raises(ValueError, match="opt '-O9'"):
        build_elf([source], tmp_path / "ok.elf", opt="-O9", toolchain=toolchain)
    with pytest.raises(ValueError, match="define '-DX'"):
        build_elf([source], tmp_path / "ok.elf", defines=["-DX"], toolchain=toolchain)


def test_sizes_account_for_a_table_and_a_buffer(toolchain: Toolchain, tmp_path: Path) -> None:
    source = _source(tmp_path, "sizes.c", SIZES_PROGRAM)
    small, large = (
        build_elf(
            [source], tmp_path / f"t{n}.elf", defines=[f"TABLE_BYTES={n}"], toolchain=toolchain
        )
        for n in (4, 8192)
    )
    before, after = (section_sizes(elf, toolchain=toolchain) for elf in (small, large))
    for sizes in (before, after):
        assert 4096 < sizes["text"] < 256 * 1024  # newlib's printf and more, not a whole flash
        assert sizes["bss"] >= 4096
        assert sizes["flash"] == sizes["text"] + sizes["data"]
        assert sizes["ram"] == sizes["data"] + sizes["bss"]
    assert 8192 - 4 <= after["flash"] - before["flash"] <= 8192 - 4 + 8  # alignment padding
    assert after["ram"] == before["ram"]
    symbols = symbol_sizes(large, toolchain=toolchain)
    assert symbols["kws_table"] == 8192
    assert symbols["kws_scratch"] == 4096
    lo, hi = symbol_range(large, "main", toolchain=toolchain)
    assert hi - lo == symbols["main"] > 0
    assert lo % 2 == 0


def test_instruction_window_scales_with_calls(
    toolchain: Toolchain, plugin: Path, tmp_path: Path
) -> None:
    source = _source(tmp_path, "loop.c", LOOP_PROGRAM)
    windows = {}
    for calls in (10, 30):
        elf = build_elf(
            [source], tmp_path / f"loop{calls}.elf", defines=[f"CALLS={calls}"], toolchain=toolchain
        )
        lo, hi = symbol_range(elf, "kws_work", toolchain=toolchain)
        run = run_qemu(
            elf,
            timeout_s=TIMEOUT_S,
            toolchain=toolchain,
            plugin=plugin,
            plugin_args={"lo": lo, "hi": hi},
        )
        assert run.insns is not None and run.window is not None
        assert run.insns > run.window > 10 * calls  # at least one instruction per iteration
        windows[calls] = run.window
    assert windows[10] % 10 == 0
    assert windows[30] == 3 * windows[10]


def test_plugin_is_built_once(plugin: Path) -> None:
    stamp = plugin.stat().st_mtime_ns
    assert build_plugin(PLUGIN_SOURCE, plugin.parent) == plugin
    assert plugin.stat().st_mtime_ns == stamp


def test_dsp_intrinsics_match_plain_c_and_save_instructions(
    toolchain: Toolchain, plugin: Path, tmp_path: Path
) -> None:
    source = _source(tmp_path, "dsp.c", DSP_PROGRAM)
    elf = build_elf(
        [source],
        tmp_path / "dsp.elf",
        defines=[f"DOT_LENGTH={DOT_LENGTH}", f"DSP_ROUNDS={DSP_ROUNDS}"],
        toolchain=toolchain,
    )
    macs = DSP_ROUNDS * DOT_LENGTH
    per_mac = {}
    for name in ("kws_dot_c", "kws_dot_dsp"):
        lo, hi = symbol_range(elf, name, toolchain=toolchain)
        run = run_qemu(
            elf,
            timeout_s=TIMEOUT_S,
            toolchain=toolchain,
            plugin=plugin,
            plugin_args={"lo": lo, "hi": hi, "hist": True},
        )
        assert run.stdout.strip() == "dsp ok"
        assert run.window is not None
        per_mac[name] = run.window / macs
        if name == "kws_dot_dsp":  # two products per SMLAD, one SXTB16 per two operands
            assert run.mnemonics["smlad"] == macs // 2
            assert run.mnemonics["sxtb16"] == macs
    assert per_mac["kws_dot_dsp"] < 0.75 * per_mac["kws_dot_c"]


def test_front_end_has_no_fused_multiply_add_in_gnu_mode(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    """Arduino and most IDEs build C in a GNU dialect, where GCC contracts a*b+c into one
    VFMA that rounds once: the front end would then differ from the host's on some clips.
    The generated source turns contraction off itself (it had 15 VFMA without that)."""
    import features
    from kws.export import cfront

    cfront.write_front_end(tmp_path, features.FeatureSpec(), input_scale=0.5, input_zero_point=0)
    obj = tmp_path / "kws_features.o"
    subprocess.run(
        [str(toolchain.gcc), "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
         "-mfpu=fpv4-sp-d16", "-std=gnu11", "-O2", "-c", str(tmp_path / "kws_features.c"),
         "-o", str(obj)],
        check=True, capture_output=True,
    )  # fmt: skip
    objdump = toolchain.gcc.with_name(toolchain.gcc.name.replace("gcc", "objdump"))
    listing = subprocess.run(
        [str(objdump), "-d", str(obj)], check=True, capture_output=True, text=True
    ).stdout
    assert "vmul.f32" in listing  # the float code is there...
    assert not any(op in listing for op in ("vfma", "vfms", "vfnm"))  # ...not fused
