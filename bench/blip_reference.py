#!/usr/bin/env python3
"""Reference for `brainscope bench blip`: one caption of one 384x384 image with a
blip-image-captioning-large-sized BlipForConditionalGeneration (random weights), exactly
`--tokens` generated tokens (min_length = max_length), greedy and `--beams` beams, on the CPU.
Prints JSON: median seconds per caption for each."""
import argparse
import json
import time

import torch
from transformers import BlipConfig, BlipForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--beams", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    config = BlipConfig(
        text_config=dict(vocab_size=30524, hidden_size=768, encoder_hidden_size=1024,
                         intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                         max_position_embeddings=512, hidden_act="gelu", layer_norm_eps=1e-12),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                           num_attention_heads=16, image_size=384, patch_size=16,
                           hidden_act="gelu", layer_norm_eps=1e-5),
    )
    model = BlipForConditionalGeneration(config).eval()
    pixels = torch.randn(1, 3, 384, 384)
    length = a.tokens + 1  # [DEC] counts
    out = {"threads": torch.get_num_threads(), "tokens": a.tokens}
    for name, beams in [("greedy", 1), ("beams", a.beams)]:
        times = []
        with torch.no_grad():
            for _ in range(a.repeats + 1):
                t = time.perf_counter()
                ids = model.generate(pixel_values=pixels, num_beams=beams, max_length=length,
                                     min_length=length)
                times.append(time.perf_counter() - t)
        assert ids.shape[1] == length, ids.shape
        times = sorted(times[1:])
        out[name] = {"s_per_caption": times[len(times) // 2], "num_beams": beams}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
