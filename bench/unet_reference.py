#!/usr/bin/env python3
"""PyTorch/diffusers side of `brainscope bench unet`: one UNet2DConditionModel call at SD 1.5 size
(batch 2, latents 4x64x64, context 77x768, random weights) on the CPU, float32. Prints JSON
{"unet_s": median, ...}.

Usage: python3 bench/unet_reference.py [--repeats N] [--threads N]
"""
import argparse
import json
import statistics
import time

import torch
from diffusers import UNet2DConditionModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # The SD 1.5 unet/config.json: diffusers' defaults with these three fields.
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    latents = torch.randn(2, 4, 64, 64)
    context = torch.randn(2, 77, 768)

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.inference_mode():
        s = timed(lambda: unet(latents, 741, context).sample)
    print(json.dumps({"unet_s": s, "repeats": args.repeats, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
