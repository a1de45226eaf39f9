"""Loading a float32 checkpoint as fp8 converts tensor by tensor: peak RSS near the fp8 size.

A fresh process loads the 1.6 GB float32 LM of test_lm_load_memory with fp8 weights. Measured with
/proc's VmHWM (Linux): getrusage's ru_maxrss would carry the parent's peak over exec. The real-size
3B figure (0.29-0.30x of 15.75 GB) is in benchmarks/RESULTS.md (benchmarks/bench_fp8_memory.py).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from test_lm_load_memory import big_checkpoint  # noqa: F401  (fixture: a 1.6 GB float32 LM folder)

MEASURE = """
import re, sys, torch
from heartmula_core.lm.load import load_lm
from heartmula_core.quant import formats
from heartmula_core.quant.storage import WeightStorage
torch.set_num_threads(1)
def status(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
before = status("VmHWM")
lm = load_lm(sys.argv[1], storage=WeightStorage(formats.E4M3))
held = sum(t.numel() * t.element_size() for t in lm.model.state_dict().values())
print(before, status("VmHWM"), held)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc (Linux)")
def test_fp8_loading_peaks_near_the_fp8_size(big_checkpoint):
    folder, size = big_checkpoint
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], cwd=repo, capture_output=True, text=True,
                         check=True)
    before, peak, held = map(int, out.stdout.split())
    added = peak - before
    print(f"file {size / 1e9:.2f} GB, model {held / 1e9:.2f} GB, peak RSS added {added / 1e9:.2f} GB "
          f"({added / size:.3f} x file)")
    assert held < 0.27 * size  # fp8 weights (plus norms and scales)
    assert added < held + 0.25e9  # the model plus the conversion slabs, never a float32 copy
