"""Wan 2.2 TI2V-5B laid out as `Wan-AI/Wan2.2-TI2V-5B-Diffusers` is (model_index.json,
transformer/, vae/, text_encoder/, tokenizer/, scheduler/), with random weights: `tiny` at the
sizes of diffusers' own Wan 2.2 5B tests (CPU suite), else the full-size architecture (a 5 B
transformer, UMT5-XXL, the 48-channel VAE with 16x spatial compression) for bench/gpu_smoke.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The repository's model_index.json: diffusers' WanPipeline class name, `expand_timesteps` on
# (TI2V-5B denoises every latent frame but the first, the photo's), one transformer.
MODEL_INDEX: dict[str, Any] = {
    "_class_name": "WanPipeline", "_diffusers_version": "0.35.0.dev0", "boundary_ratio": None,
    "expand_timesteps": True, "scheduler": ["diffusers", "UniPCMultistepScheduler"],
    "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanTransformer3DModel"], "transformer_2": [None, None],
    "vae": ["diffusers", "AutoencoderKLWan"],
}
SCHEDULER: dict[str, Any] = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 5.0,
                             "num_train_timesteps": 1000}
_WORDS = ("the", "a", "room", "camera", "slowly", "dolly", "dollies", "in", "out", "pan", "left", "right",
          "orbit", "tilt", "up", "down", "living", "bedroom", "kitchen", "modern", "cinematic", "flythrough",
          "towards", "whole", "smooth", "steady")


def _vae(tiny: bool) -> Any:
    from diffusers import AutoencoderKLWan

    shape: dict[str, Any] = (
        {"base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1} if tiny
        else {"base_dim": 160, "decoder_base_dim": 256, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2})
    return AutoencoderKLWan(z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                            latents_mean=[0.0] * 48, latents_std=[1.0] * 48, scale_factor_spatial=16,
                            scale_factor_temporal=4, temperal_downsample=[False, True, True], **shape)


def _transformer(tiny: bool, text_dim: int) -> Any:
    from diffusers import WanTransformer3DModel

    shape: dict[str, Any] = (
        {"num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 32, "num_layers": 2,
         "rope_max_seq_len": 32} if tiny
        else {"num_attention_heads": 24, "attention_head_dim": 128, "ffn_dim": 14336, "num_layers": 30,
              "rope_max_seq_len": 1024})
    return WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=48, out_channels=48, text_dim=text_dim,
                                 freq_dim=256, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                 eps=1e-6, **shape)


def _text_encoder(tiny: bool, vocab: int) -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    shape: dict[str, Any] = (
        {"d_model": 32, "d_ff": 37, "num_layers": 2, "num_heads": 4, "d_kv": 8, "vocab_size": vocab} if tiny
        else {"d_model": 4096, "d_ff": 10240, "num_layers": 24, "num_heads": 64, "d_kv": 64,
              "vocab_size": 256384})
    config = UMT5Config(feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **shape)
    return UMT5EncoderModel(config)


def write_tokenizer(folder: Path) -> int:
    """A small T5 (Unigram, SentencePiece-style) tokenizer; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5Tokenizer  # the tokenizers-backed one (T5TokenizerFast before v5)

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(char, -2.0) for char in "abcdefghijklmnopqrstuvwxyz0123456789,.-'"]
    pieces += [("\u2581" + word, -1.0) for word in _WORDS] + [("\u2581", -3.0)]
    model = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    model.pre_tokenizer = pre_tokenizers.Metaspace()
    model.decoder = decoders.Metaspace()
    tokenizer = T5Tokenizer(tokenizer_object=model, extra_ids=0, pad_token="<pad>", eos_token="</s>",
                                unk_token="<unk>", model_max_length=512)
    tokenizer.save_pretrained(folder)
    return len(pieces)


def write_random_wan(folder: Path, tiny: bool = True) -> None:
    """Built in torch's default dtype (build_models_dir sets it to the target precision)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_tokenizer(folder / "tokenizer")
    text_encoder = _text_encoder(tiny, vocab)
    text_dim = int(text_encoder.config.d_model)
    for name, model in (("text_encoder", text_encoder), ("transformer", _transformer(tiny, text_dim)),
                        ("vae", _vae(tiny))):
        model.save_pretrained(folder / name)
        del model
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "UniPCMultistepScheduler", **SCHEDULER}), "utf-8")
    (folder / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2), "utf-8")
