#!/usr/bin/env python3
"""PyTorch/transformers side of `brainscope bench clip`: the CLIP ViT-L/14 vision tower with its
projection (CLIPVisionModelWithProjection, openai/clip-vit-large-patch14's vision config) at its
real size with random weights, on the CPU, float32, a batch of 224x224 images.
Prints JSON {"s_per_batch": median, "images_per_s", "batch", "repeats", "threads", "torch"}.

Usage: python3 bench/clip_reference.py [--batch 8] [--repeats N] [--threads N]
"""
import argparse
import json
import statistics
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, projection_dim=768,
                              num_hidden_layers=24, num_attention_heads=16, image_size=224,
                              patch_size=14, hidden_act="quick_gelu")
    model = CLIPVisionModelWithProjection(config).eval()
    pixels = torch.randn(args.batch, 3, 224, 224)

    def run():
        return model(pixel_values=pixels).image_embeds

    with torch.inference_mode():
        run()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
    s = statistics.median(times)
    print(json.dumps({"s_per_batch": s, "images_per_s": args.batch / s, "batch": args.batch,
                      "repeats": args.repeats, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
