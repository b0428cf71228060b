#!/usr/bin/env python3
"""diffusers side of `brainscope bench img2img --reference`: StableDiffusionImg2ImgPipeline at SD 1.5
size with random weights (CLIP ViT-L/14 text encoder, SD VAE, SD 1.5 UNet, PNDM with SD 1.5's
scheduler config, no safety checker) on one 512x512 image, on the CPU, float32, one timed run.
Prints JSON {"s_per_image": seconds, "unet_calls": n, ...}.

Usage: python3 bench/img2img_reference.py [--steps 50] [--strength 0.75] [--guidance 6]
       [--size 512] [--tokenizer DIR] [--threads N]
"""
import argparse
import json
import time

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--strength", type=float, default=0.75)
    ap.add_argument("--guidance", type=float, default=6.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tokenizer", default="tests/fixtures/sd/pipeline/tokenizer")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768,
        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
        hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1,
    )).eval()
    n = 4
    vae = AutoencoderKL(
        down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n,
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
        norm_num_groups=32, sample_size=512,
    ).eval()
    # The SD 1.5 unet/config.json: diffusers' defaults with these three fields.
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(args.tokenizer),
        unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, args.size, args.size)  # in [0, 1], as a PIL image would be
    calls = 0

    def count(_pipe, _i, _t, kwargs):
        nonlocal calls
        calls += 1
        return kwargs

    t = time.perf_counter()
    with torch.inference_mode():
        pipe(
            prompt="a photograph of a cat sitting on a wooden table", image=image,
            strength=args.strength, guidance_scale=args.guidance, num_inference_steps=args.steps,
            output_type="np", callback_on_step_end=count,
        )
    s = time.perf_counter() - t
    print(json.dumps({"s_per_image": s, "unet_calls": calls, "steps": args.steps,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
