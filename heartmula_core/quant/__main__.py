"""``python -m heartmula_core.quant --model-dir IN --out OUT --weight-dtype fp8_e4m3fn``"""

import sys

from .cli import main

sys.exit(main())
