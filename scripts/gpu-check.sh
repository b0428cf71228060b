#!/usr/bin/env bash
# The GPU check, in one go (under 8 minutes on a GPU box with a warm crates.io cache):
#   1. detect the GPU: CUDA (nvidia-smi answers) or a wgpu adapter (Vulkan/Metal);
#   2. build once, release profile, with `--features cuda` where CUDA is (wgpu is a default
#      feature; cuda's build needs the network for its LLVM download);
#   3. run the GPU test group (`gpu_*` in tests/it) on that device, a missing adapter a failure;
#   4. time `brainscope bench train` and `bench vae` on the GPU, beside PyTorch on CUDA when
#      torch with CUDA is installed (bench/*_reference.py --device cuda), and print the ratios
#      (PyTorch s / burn s: above 1 means burn is faster).
#
# Usage: scripts/gpu-check.sh [--device cuda|wgpu] [--steps N]
# Results: stdout, and the raw JSON under target/gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."

device="" steps=20
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        *) echo "usage: $0 [--device cuda|wgpu] [--steps N]" >&2; exit 2 ;;
    esac
done

start=$(date +%s)
phase() { echo "== $1 (at $(( $(date +%s) - start )) s)"; }
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"

out=target/gpu-check
mkdir -p "$out"

phase "detect"
features=()
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    features=(--features cuda)
    device=${device:-cuda}
else
    echo "no CUDA GPU (nvidia-smi): using wgpu"
    device=${device:-wgpu}
fi
case "$device" in
    cuda*) features=(--features cuda) ;;
esac
echo "device: $device; cargo features: default (wgpu) ${features[*]:-}"

phase "build (release)"
cargo build --release --locked "${features[@]}"
cargo test --release --locked "${features[@]}" --test it --no-run
bin=target/release/brainscope
"$bin" devices

phase "GPU test group on $device"
export BRAINSCOPE_GPU_TEST_DEVICE=$device
if [[ $device == wgpu* ]]; then export BRAINSCOPE_REQUIRE_WGPU=1; fi
set +e
cargo test --release --locked "${features[@]}" --test it gpu_ -- --nocapture >"$out/gpu_tests.log" 2>&1
status=$?
set -e
# The figures and verdicts (the whole log is in target/gpu-check/gpu_tests.log).
grep -E "^(test |test result|skipped:|note:)|max |parity|decoded|shared t|vision|first epoch" "$out/gpu_tests.log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$out/gpu_tests.log"
    echo "error: the GPU test group failed (log: $out/gpu_tests.log)" >&2
    exit 1
fi

phase "bench train (paper size) on $device"
"$bin" bench train --device "$device" --no-reference --steps "$steps" --json >"$out/burn_train.json"
phase "bench vae (SD size) on $device"
"$bin" bench vae --device "$device" --no-reference --json >"$out/burn_vae.json"

torch_cuda=no
if command -v python3 >/dev/null && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    torch_cuda=yes
    phase "PyTorch on CUDA"
    python3 bench/train_reference.py --device cuda --steps "$steps" >"$out/torch_train.json"
    if python3 -c 'import diffusers' 2>/dev/null; then
        python3 bench/vae_reference.py --device cuda >"$out/torch_vae.json"
    fi
else
    echo "PyTorch with CUDA not installed: burn's figures only"
fi

phase "figures"
python3 - "$out" "$device" "$torch_cuda" <<'EOF' || cat "$out"/*.json
import json, os, sys
out, device, torch_cuda = sys.argv[1:]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
def line(what, burn_s, torch_s):
    ratio = f"{torch_s / burn_s:.2f}" if torch_s else "-"
    torch = f"{torch_s:.4f} s" if torch_s else "-"
    print(f"{what:<22} burn ({device}) {burn_s:.4f} s   PyTorch (cuda) {torch:<10}  ratio {ratio}")
bt, bv = load("burn_train.json"), load("burn_vae.json")
tt, tv = load("torch_train.json"), load("torch_vae.json")
line("train step (s/step)", bt["burn_s"], tt and tt["s_per_step"])
line("VAE decode 64->512", bv["decode"]["burn_s"], tv and tv["decode_s"])
line("VAE encode 512", bv["encode"]["burn_s"], tv and tv["encode_s"])
print("ratio = PyTorch s / burn s (above 1: burn faster)")
EOF
echo "== done in $(( $(date +%s) - start )) s"
