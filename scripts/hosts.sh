# Shared by scripts/setup-dev and scripts/test (sourced, not run): where things are and what each
# test environment holds. One place to change a version.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The folder with ComfyUI source trees (comfyui/<version>/), beside the clone unless told otherwise.
SHARED="${HEARTMULA_SHARED:-$ROOT/../shared}"
MAIN_VENV="$ROOT/.venv"

# The main environment: the newest stack a user can have (no ComfyUI, no torchaudio).
MAIN_PYTHONS="3.12 3.13 3.11 3.10"
MAIN_TORCH="torch==2.15.0"

# The real ComfyUI versions the suite can run against, each with the torch it ships with.
KNOWN_HOSTS="0.3.64 0.28.0 0.33.0"
# Those scripts/setup-dev and scripts/test (so CI) take when given none: the floor and the newest
# that runs here (0.28.0 would bring a loaded CI run near its 90 minutes; README). Others by name:
# scripts/setup-dev 0.28.0 && scripts/test 0.28.0, or all of them: HEARTMULA_HOSTS="$KNOWN_HOSTS".
HOSTS="${HEARTMULA_HOSTS:-0.3.64 0.33.0}"
declare -A HOST_PYTHONS=(
    [0.3.64]="3.11 3.12 3.10"
    [0.28.0]="3.12 3.13 3.11 3.10"
    [0.33.0]="3.12 3.13 3.11 3.10"
)
declare -A HOST_TORCH=(
    [0.3.64]="torch==2.9.1 torchaudio==2.9.1 torchvision==0.24.1"
    [0.28.0]="torch==2.11.0 torchaudio==2.11.0 torchvision==0.26.0"
    [0.33.0]="torch==2.11.0 torchaudio==2.11.0 torchvision==0.26.0"
)
# 0.3.64 allows any transformers; keep it on 4.5x so transformers 4 stays tested (0.28+ bring 5.x).
# 0.33's requirements.txt pins comfy-kitchen, comfy-aimdo and the front-end package itself.
declare -A HOST_EXTRA=(
    [0.3.64]="transformers<5"
    [0.28.0]=""
    [0.33.0]=""
)

host_dir() { echo "$SHARED/comfyui/$1"; }
host_venv() { echo "$ROOT/.venvs/comfyui-$1"; }

# Why a host cannot be used here (empty when it can).
host_missing_reason() {
    local dir
    dir="$(host_dir "$1")"
    if [ ! -f "$dir/main.py" ]; then
        echo "no ComfyUI $1 source tree at $dir (set HEARTMULA_SHARED to the folder holding comfyui/$1)"
    fi
}

is_known_host() { [[ " $KNOWN_HOSTS " == *" $1 "* ]]; }

log() { printf '[%s] %s\n' "$(basename "$0")" "$*"; }
