"""Does every GPU kernel of the course recipe exist for a T4 (compute capability 7.5)? Checked without a T4.

- Triton kernels (TRL's fused LM head; Liger's RMSNorm, SwiGLU and RoPE when the profile turns Liger on): the recipe
  trains two steps on the GPU at hand, which compiles every Triton kernel it launches; each compiled variant is then
  compiled again for GPUTarget("cuda", 75, 32) with the same signature, constants and options, and its shared
  memory is compared with what a T4 block may use.
- bitsandbytes' CUDA libraries (`--bnb`, on any machine): the architectures of the SASS they ship, read with
  cuobjdump (PyPI: nvidia-cuda-cuobjdump).
- torch: the architectures its CUDA build was compiled for (torch.cuda.get_arch_list(), on the GPU).

    python benchmarks/sm75_check.py --out benchmarks/results/sm75.json --set '{"use_liger_kernel": true}'
    python benchmarks/sm75_check.py --bnb PATH/TO/cuobjdump --out benchmarks/results/sm75.json
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t4_memory as tm  # noqa: E402

T4_SHARED_BYTES = 65536  # max shared memory per block on compute capability 7.5: 64 KB (CUDA C++ Programming Guide, compute capabilities)


def triton_kernels() -> list:
    """(JITFunction, CompiledKernel) of every Triton kernel compiled in this process."""
    from triton.runtime.jit import JITFunction

    found = []
    for obj in gc.get_objects():
        if isinstance(obj, JITFunction):
            for cache in obj.device_caches.values():
                for kernel in cache[0].values():
                    found.append((obj, kernel))
    return found


def compile_for_sm75(kernel) -> dict:
    """Compile one specialization again for sm_75; its name, module, and the result."""
    import triton
    from triton.backends.compiler import GPUTarget

    md = kernel.metadata
    options = {k: getattr(md, k) for k in ("num_warps", "num_stages", "num_ctas", "enable_fp_fusion")
               if hasattr(md, k)}
    row = {"kernel": kernel.name, "module": getattr(kernel.src.fn, "__module__", "?"),
           "options": options, "shared_on_gpu": getattr(md, "shared", None)}
    try:
        out = triton.compile(kernel.src, target=GPUTarget("cuda", 75, 32), options=options)
        row.update(ok=True, shared_sm75=out.metadata.shared, cubin_bytes=len(out.asm.get("cubin", b"")),
                   fits_t4_shared=out.metadata.shared <= T4_SHARED_BYTES)
    except Exception as e:  # noqa: BLE001 - a failure to compile is the finding
        row.update(ok=False, error=f"{type(e).__name__}: {str(e)[:400]}")
    return row


def gpu_check(model_dir: str, changes: dict) -> dict:
    import torch
    import triton

    run = tm.course_run(model_dir, 256, 1, 2, changes, "random", "t4", "course")
    rows = [compile_for_sm75(k) for _, k in triton_kernels()]
    return {"device": torch.cuda.get_device_name(0), "torch_arch_list": torch.cuda.get_arch_list(),
            "triton": triton.__version__, "changes": changes, "recipe_status": run.get("status"),
            "recipe_error": run.get("error"), "kernels": rows}


def bnb_check(cuobjdump: str) -> dict:
    import bitsandbytes

    libs = sorted(Path(bitsandbytes.__file__).parent.glob("libbitsandbytes_cuda*.so"))
    out = {}
    for lib in libs:
        listing = subprocess.run([cuobjdump, "--list-elf", str(lib)], capture_output=True, text=True).stdout
        out[lib.name] = sorted(set(re.findall(r"sm_\d+", listing)), key=lambda s: int(s[3:]))
    return {"bitsandbytes": bitsandbytes.__version__, "sass_archs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(tm.ROOT / "benchmarks/results/sm75.json"))
    ap.add_argument("--model-dir", default="/tmp/qwen-7b-random")
    ap.add_argument("--set", default='{"use_liger_kernel": true}', help="profile changes (which kernels run)")
    ap.add_argument("--bnb", metavar="CUOBJDUMP", help="check bitsandbytes' libraries with this cuobjdump")
    a = ap.parse_args()
    out = Path(a.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    if a.bnb:
        report["bitsandbytes"] = bnb_check(a.bnb)
    else:
        if not (Path(a.model_dir) / "config.json").exists():
            tm.make_random_model(Path(a.model_dir), "qwen")
        report["triton"] = gpu_check(a.model_dir, json.loads(a.set))
        bad = [k["kernel"] for k in report["triton"]["kernels"] if not (k["ok"] and k["fits_t4_shared"])]
        tm.log(f"{len(report['triton']['kernels'])} Triton kernels compiled for sm_75; problems: {bad or 'none'}")
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
