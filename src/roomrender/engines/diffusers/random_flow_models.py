"""Random FLUX.1-schnell and Qwen-Image-Edit pipeline folders (random_models.py's flow families).

`tiny`: the sizes of diffusers' own pipeline tests (tests/pipelines/flux, tests/pipelines/qwenimage),
with a VAE that downsamples 8× as the real ones do, so that sizes round as they do at full size;
`full`: the released architectures (FLUX.1-schnell 12B transformer and T5-XXL, Qwen-Image 20B
transformer and Qwen2.5-VL-7B), random. The tokenizers are made here, offline: a T5-style Unigram
over single characters and a byte-level BPE with Qwen's chat and vision markers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QWEN_MARKERS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>")


def t5_tokenizer() -> Any:
    """A T5 tokenizer (fast) over single characters: pad 0, end 1, unknown 2."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(32, 127)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return T5Tokenizer(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0, model_max_length=512)


def qwen_tokenizer() -> Any:
    """A byte-level BPE (no merges) with Qwen2's end marker and the chat and vision markers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    vocab = {char: index for index, char in enumerate(sorted(ByteLevel.alphabet()))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    fast = Qwen2Tokenizer(tokenizer_object=tokenizer, unk_token="<|endoftext|>", bos_token=None,
                              eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.add_special_tokens({"additional_special_tokens": list(QWEN_MARKERS)})
    return fast


def build_flux(folder: Path, tiny: bool, clip_encoder: Any, clip_tokenizer: Any) -> None:
    """A FLUX.1-schnell folder: transformer, VAE, CLIP and T5 encoders, tokenizers, scheduler."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer_2 = t5_tokenizer()
    if tiny:
        transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                             attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                             pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
        t5 = T5Config(d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, vocab_size=len(tokenizer_2),
                      feed_forward_proj="gated-gelu", relative_attention_num_buckets=8)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=1, norm_num_groups=4, sample_size=64, use_quant_conv=False,
                            use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    else:
        transformer = FluxTransformer2DModel(guidance_embeds=False)
        t5 = T5Config(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, vocab_size=32128,
                      feed_forward_proj="gated-gelu")
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16,
                            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=1024,
                            use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159,
                            scaling_factor=0.3611)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    pipeline: Any = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip_encoder, tokenizer=clip_tokenizer,
                 text_encoder_2=T5EncoderModel(t5), tokenizer_2=tokenizer_2,
                 transformer=transformer)
    pipeline.save_pretrained(folder)


def build_qwen_image(folder: Path, tiny: bool) -> None:
    """A Qwen-Image-Edit folder: transformer, VAE, Qwen2.5-VL encoder, tokenizer, processor,
    scheduler."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    tokenizer = qwen_tokenizer()
    ids = {marker: tokenizer.convert_tokens_to_ids(marker) for marker in QWEN_MARKERS}
    markers = {"vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
               "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"]}
    if tiny:
        transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                                  attention_head_dim=16, num_attention_heads=3,
                                                  joint_attention_dim=16, guidance_embeds=False,
                                                  axes_dims_rope=(8, 4, 4))
        vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                     temperal_downsample=[False, True], latents_mean=[0.0] * 4,
                                     latents_std=[1.0] * 4)
        sizes: dict[str, Any] = dict(
            text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2,
                         "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": len(tokenizer),
                         "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                         "rope_theta": 1000000.0},
            vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                           "out_hidden_size": 16},
            hidden_size=16, vocab_size=len(tokenizer))
        config = Qwen2_5_VLConfig(**sizes, **markers)
        image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 64)
    else:
        transformer = QwenImageTransformer2DModel()
        vae = AutoencoderKLQwenImage()
        config = Qwen2_5_VLConfig(**markers)
        image_processor = Qwen2VLImageProcessor()
    # Saved as the released repository lays it out (its `processor` folder: the image processor's
    # and the tokenizer's files), without building transformers' Qwen2VLProcessor, which needs
    # torchvision for its video part.
    pipeline: Any = QwenImageEditPlusPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                              text_encoder=Qwen2_5_VLForConditionalGeneration(config),
                                              tokenizer=tokenizer, processor=None, transformer=transformer)
    pipeline.save_pretrained(folder)
    image_processor.save_pretrained(folder / "processor")
    tokenizer.save_pretrained(folder / "processor")
    index = json.loads((folder / "model_index.json").read_text("utf-8"))
    index["processor"] = ["transformers", "Qwen2VLProcessor"]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), "utf-8")
