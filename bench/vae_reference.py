#!/usr/bin/env python3
"""PyTorch/diffusers side of `brainscope bench vae`: the SD VAE at its real size with random
weights, float32, on the CPU (or --device cuda, for scripts/gpu-check.sh). Prints JSON
{"decode_s": median, "encode_s": median, ...}.

Usage: python3 bench/vae_reference.py [--repeats N] [--threads N] [--device cpu|cuda]
"""
import argparse
import json
import statistics
import time

import torch
from diffusers import AutoencoderKL


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = 4
    vae = AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n,
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
        norm_num_groups=32, sample_size=512,
    ).eval().to(dev)
    latent = torch.randn(1, 4, 64, 64).to(dev)
    image = (torch.rand(1, 3, 512, 512) * 2 - 1).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.inference_mode():
        dec = timed(lambda: vae.decode(latent).sample)
        enc = timed(lambda: vae.encode(image).latent_dist.mode())
    print(json.dumps({"decode_s": dec, "encode_s": enc, "repeats": args.repeats,
                      "threads": torch.get_num_threads(), "device": args.device}))


if __name__ == "__main__":
    main()
