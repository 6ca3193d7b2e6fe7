"""A models folder of randomly initialised weights, laid out as the registry expects.

For tests (`tiny`: a few thousand parameters, runs on a CPU in seconds) and the GPU smoke bench
(`full`: SD 1.5- and SDXL-sized UNets, ControlNets, VAEs and text encoders, so timings are
realistic). The images are noise; the point is that every pipeline runs through the real loading
code. Nothing is downloaded. The tokenizers are CLIP's own BPE when open_clip is installed (it
ships `bpe_simple_vocab_16e6.txt.gz`, the same BPE as the CLIP text encoder, 49408 tokens; the
test dependencies install it), else a made-up byte-level one written here.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from roomrender.engines.diffusers.random_objects import write_shap_e
from roomrender.engines.diffusers.registry import ModelSpec, Registry, load_registry

ADE_LABELS_FILE = "ade20k.json"


def _bytes_to_unicode() -> dict[int, str]:
    """The byte → printable character table of byte-level BPE (as CLIP's tokenizer uses)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def write_tokenizer(folder: Path, vocab_size: int) -> None:
    """A CLIP tokenizer over single bytes plus a few merged words, from files written here."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    merges = [("r", "o"), ("ro", "o"), ("roo", "m</w>"), ("t", "h"), ("th", "e</w>")]
    tokens += ["ro", "roo", "room</w>", "th", "the</w>"]
    assert len(tokens) <= vocab_size
    vocab = {token: index for index, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), "utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), "utf-8")
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                              model_max_length=77)
    tokenizer.save_pretrained(folder)


CLIP_VOCAB_SIZE = 49408


def clip_bpe_file() -> Path | None:
    """open_clip's copy of CLIP's BPE merges, found without importing open_clip (which needs
    torchvision); None when open_clip is not installed."""
    found = importlib.util.find_spec("open_clip")
    for folder in (found.submodule_search_locations or []) if found else []:
        path = Path(folder) / "bpe_simple_vocab_16e6.txt.gz"
        if path.is_file():
            return path
    return None


def write_clip_tokenizer(folder: Path, bpe: Path) -> None:
    """CLIP's tokenizer (vocab.json, merges.txt) from the BPE merges, built as CLIP builds it:
    the 256 byte symbols, the same with the end-of-word mark, one token per merge, then the start
    and end markers: 49408 tokens."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(bpe, "rt", encoding="utf-8") as merges_file:
        lines = merges_file.read().split("\n")
    # CLIP keeps the first 48894 merges: 2 x 256 byte symbols + 48894 + 2 markers = 49408.
    merges = [tuple(line.split()) for line in lines[1:CLIP_VOCAB_SIZE - 2 * 256 - 2 + 1]]
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), "utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), "utf-8")
    tokenizer = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                              model_max_length=77, pad_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)


def _ade_labels() -> dict[int, str]:
    from roomrender.catalog import load_data_file

    return {entry["id"]: entry["name"] for entry in load_data_file(ADE_LABELS_FILE)["classes"]}


class Builder:
    def __init__(self, profile: str = "tiny", dtype: torch.dtype = torch.float32,
                 clip_bpe: Path | None = None) -> None:
        if profile not in ("tiny", "full"):
            raise ValueError("profile must be 'tiny' or 'full'")
        self.tiny = profile == "tiny"
        self.dtype = dtype
        self.cross_attention_dim = 32 if self.tiny else 768
        self.clip_bpe = clip_bpe if clip_bpe is not None else clip_bpe_file()
        self.vocab_size = CLIP_VOCAB_SIZE if self.clip_bpe else 1000

    def _cast(self, model: Any) -> Any:
        return model if self.dtype == torch.float32 else model.to(self.dtype)

    # -- Stable Diffusion parts ---------------------------------------------------------------

    def text_encoder(self, hidden: int | None = None, layers: int = 12, projection: bool = False) -> Any:
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        hidden = hidden or self.cross_attention_dim
        # The token ids of the markers: CLIP's, or the made-up tokenizer's.
        markers: dict[str, Any] = ({"bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
                                   if self.clip_bpe else {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1})
        if self.tiny:
            config = CLIPTextConfig(hidden_size=hidden, intermediate_size=37, num_attention_heads=4,
                                    num_hidden_layers=2, vocab_size=self.vocab_size, projection_dim=hidden,
                                    max_position_embeddings=77, **markers)
        else:
            config = CLIPTextConfig(hidden_size=hidden, intermediate_size=hidden * 4,
                                    num_attention_heads=hidden // 64, num_hidden_layers=layers,
                                    vocab_size=49408, projection_dim=hidden,
                                    hidden_act="gelu" if hidden > 1024 else "quick_gelu",
                                    max_position_embeddings=77, **markers)
        return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)

    def unet(self, in_channels: int = 4) -> Any:
        from diffusers import UNet2DConditionModel

        if self.tiny:
            return UNet2DConditionModel(
                block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
                in_channels=in_channels, out_channels=4,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                cross_attention_dim=self.cross_attention_dim, attention_head_dim=8)
        return UNet2DConditionModel(sample_size=64, in_channels=in_channels, out_channels=4,
                                    cross_attention_dim=768, attention_head_dim=8)

    def vae(self, blocks: int | None = None) -> Any:
        from diffusers import AutoencoderKL

        if self.tiny:
            channels = [32, 32, 64][: blocks or 2]
        else:
            channels = [128, 256, 512, 512][: blocks or 4]
        return AutoencoderKL(block_out_channels=channels, in_channels=3, out_channels=3,
                             down_block_types=["DownEncoderBlock2D"] * len(channels),
                             up_block_types=["UpDecoderBlock2D"] * len(channels),
                             latent_channels=4, layers_per_block=1 if self.tiny else 2)

    def controlnet(self) -> Any:
        from diffusers import ControlNetModel

        if self.tiny:
            return ControlNetModel(
                block_out_channels=(32, 64), layers_per_block=1, in_channels=4,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                cross_attention_dim=self.cross_attention_dim, attention_head_dim=8,
                conditioning_embedding_out_channels=(16, 32))
        return ControlNetModel(in_channels=4, cross_attention_dim=768, attention_head_dim=8)

    @staticmethod
    def scheduler() -> Any:
        from diffusers import PNDMScheduler

        return PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                             skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)

    def sd(self, folder: Path, in_channels: int = 4) -> None:
        from diffusers import StableDiffusionPipeline

        text_encoder = self.text_encoder()
        pipeline = StableDiffusionPipeline(
            vae=self.vae(), text_encoder=text_encoder, tokenizer=self._tokenizer(folder),
            unet=self.unet(in_channels), scheduler=self.scheduler(),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        self._cast(pipeline).save_pretrained(folder)

    def sd_upscale(self, folder: Path) -> None:
        from diffusers import (
            DDIMScheduler,
            DDPMScheduler,
            StableDiffusionUpscalePipeline,
            UNet2DConditionModel,
        )

        if self.tiny:
            unet = UNet2DConditionModel(
                block_out_channels=(32, 32, 64), layers_per_block=1, sample_size=32, in_channels=7,
                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                cross_attention_dim=32, attention_head_dim=8, use_linear_projection=True,
                num_class_embeds=1000)
            text_encoder = self.text_encoder(32)
        else:
            unet = UNet2DConditionModel(
                block_out_channels=(256, 512, 512, 1024), layers_per_block=2, sample_size=128,
                in_channels=7, out_channels=4,
                down_block_types=("DownBlock2D", *["CrossAttnDownBlock2D"] * 3),
                up_block_types=(*["CrossAttnUpBlock2D"] * 3, "UpBlock2D"),
                cross_attention_dim=1024, attention_head_dim=[2, 4, 8, 8], use_linear_projection=True,
                num_class_embeds=1000)
            text_encoder = self.text_encoder(1024, layers=23)
        vae = self.vae(blocks=3)
        vae.register_to_config(scaling_factor=0.08333)
        pipeline = StableDiffusionUpscalePipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=self._tokenizer(folder), unet=unet,
            low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"),
            max_noise_level=350)
        self._cast(pipeline).save_pretrained(folder)

    def _tokenizer(self, folder: Path) -> Any:
        from transformers import CLIPTokenizer

        with tempfile.TemporaryDirectory() as scratch:
            if self.clip_bpe:
                write_clip_tokenizer(Path(scratch), self.clip_bpe)
            else:
                write_tokenizer(Path(scratch), vocab_size=1000)
            return CLIPTokenizer.from_pretrained(scratch)

    # -- SDXL parts ------------------------------------------------------------------------------

    def sdxl_unet(self, in_channels: int = 4) -> Any:
        from diffusers import UNet2DConditionModel

        if self.tiny:
            return UNet2DConditionModel(
                block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels,
                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
                cross_attention_dim=64)
        return UNet2DConditionModel(
            sample_size=128, in_channels=in_channels, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
            cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)

    def sdxl(self, folder: Path, spec: ModelSpec, in_channels: int) -> None:
        """An SDXL checkpoint (two text encoders); a model that `shares` another's parts gets only
        its UNet and scheduler."""
        from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

        scheduler: Any = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           steps_offset=1, timestep_spacing="leading")
        unet = self._cast(self.sdxl_unet(in_channels))
        if spec.shares:
            unet.save_pretrained(folder / "unet", variant=spec.variant)
            scheduler.save_pretrained(folder / "scheduler")
            (folder / "model_index.json").write_text(json.dumps({
                "_class_name": "StableDiffusionXLInpaintPipeline", "requires_aesthetics_score": False,
                "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            }, indent=1))
            return
        vae = self.vae()
        vae.register_to_config(scaling_factor=0.13025, force_upcast=True)
        hidden = (32, 32) if self.tiny else (768, 1280)
        pipeline = StableDiffusionXLPipeline(
            vae=vae, text_encoder=self.text_encoder(hidden[0]), tokenizer=self._tokenizer(folder),
            text_encoder_2=self.text_encoder(hidden[1], layers=32, projection=True),
            tokenizer_2=self._tokenizer(folder), unet=unet, scheduler=scheduler, add_watermarker=False)
        self._cast(pipeline).save_pretrained(folder, variant=spec.variant)

    def controlnet_union(self, unet_config: dict[str, Any]) -> Any:
        """A ControlNet Union (xinsir's: six control types) shaped after an SDXL UNet."""
        from diffusers import ControlNetUnionModel, UNet2DConditionModel

        config = {**unet_config, "in_channels": 4}
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(config)
        first = config["block_out_channels"][0]
        net = ControlNetUnionModel.from_unet(unet, load_weights_from_unet=False,
                                             conditioning_embedding_out_channels=(16, 32) if self.tiny else
                                             (16, 32, 96, 256))
        if first != net.config.num_trans_channel:
            # The union's transformer runs at the width of the first block.
            config = {k: v for k, v in net.config.items() if not k.startswith("_")}
            net = ControlNetUnionModel.from_config({**config, "num_trans_channel": first, "num_trans_head": 4,
                                                    "num_proj_channel": first})
        return net

    def vae_tiny(self) -> Any:
        from diffusers import AutoencoderTiny

        if self.tiny:
            return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                                   num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))
        return AutoencoderTiny()

    # -- preprocessors and adapters ------------------------------------------------------------

    def segmentation(self, folder: Path) -> None:
        from transformers import (
            ConvNextConfig,
            SegformerImageProcessor,
            UperNetConfig,
            UperNetForSemanticSegmentation,
        )

        labels = _ade_labels()
        if self.tiny:
            # out_features is a keyword of the backbone configs' __init__ that their stubs omit.
            backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                      out_features=["stage1", "stage2", "stage3", "stage4"])  # type: ignore[call-arg]
            config = UperNetConfig(backbone_config=backbone, hidden_size=16, use_auxiliary_head=False,
                                   id2label=labels, label2id={v: k for k, v in labels.items()})
            size = 64
        else:
            backbone = ConvNextConfig(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3],
                                      out_features=["stage1", "stage2", "stage3", "stage4"])  # type: ignore[call-arg]
            config = UperNetConfig(backbone_config=backbone, hidden_size=512, auxiliary_in_channels=384,
                                   id2label=labels, label2id={v: k for k, v in labels.items()})
            size = 512
        self._cast(UperNetForSemanticSegmentation(config)).save_pretrained(folder)
        SegformerImageProcessor(size={"height": size, "width": size}, do_reduce_labels=False).save_pretrained(folder)

    def depth(self, folder: Path) -> None:
        from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

        if self.tiny:
            config = DPTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=4,
                               num_attention_heads=4, intermediate_size=37,
                               backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32],
                               fusion_hidden_size=16, head_in_index=-1)
            size = 32
        else:
            config = DPTConfig(image_size=384, patch_size=16, hidden_size=1024, num_hidden_layers=24,
                               num_attention_heads=16, intermediate_size=4096,
                               backbone_out_indices=[5, 11, 17, 23], neck_hidden_sizes=[256, 512, 1024, 1024])
            size = 384
        self._cast(DPTForDepthEstimation(config)).save_pretrained(folder)
        DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=False).save_pretrained(folder)

    def matting(self, folder: Path) -> None:
        """A ViTMatte (a ViTDet backbone over RGB + trimap, a detail-capture decoder), with its
        image processor, as hustvl/vitmatte-small-composition-1k lays them out."""
        from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting, VitMatteImageProcessor

        # out_features: a keyword of the backbone config's __init__ that its stub omits.
        if self.tiny:
            backbone = VitDetConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                    image_size=64, pretrain_image_size=64, patch_size=16, num_channels=4,
                                    out_features=["stage2"])  # type: ignore[call-arg]
            config = VitMatteConfig(backbone_config=backbone, hidden_size=32, convstream_hidden_sizes=[8, 16, 32],
                                    fusion_hidden_sizes=[32, 16, 8, 8])
        else:
            backbone = VitDetConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                                    image_size=512, pretrain_image_size=224, patch_size=16, num_channels=4,
                                    use_relative_position_embeddings=True, window_size=14,
                                    window_block_indices=[0, 1, 3, 4, 6, 7, 9, 10],
                                    residual_block_indices=[2, 5, 8, 11], out_features=["stage12"])  # type: ignore[call-arg]
            config = VitMatteConfig(backbone_config=backbone, hidden_size=384, convstream_hidden_sizes=[48, 96, 192],
                                    fusion_hidden_sizes=[256, 128, 64, 32])
        self._cast(VitMatteForImageMatting(config)).save_pretrained(folder)
        VitMatteImageProcessor().save_pretrained(folder)

    def ip_adapter(self, folder: Path, spec: ModelSpec, unet_config: dict[str, Any]) -> None:
        from safetensors.torch import save_file
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        if self.tiny:
            vision = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                      num_hidden_layers=2, image_size=32, patch_size=8, projection_dim=32)
        else:
            vision = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_attention_heads=16,
                                      num_hidden_layers=32, image_size=224, patch_size=14,
                                      projection_dim=1024, hidden_act="gelu")
        encoder_dir = folder / (spec.image_encoder or "image_encoder")
        if (encoder_dir / "config.json").is_file():
            # Another adapter of the repository uses the same encoder (h94's SD 1.5 and SDXL ViT-H ones).
            vision = CLIPVisionConfig.from_pretrained(encoder_dir)
        else:
            # Like h94/IP-Adapter: the encoder's folder has no preprocessor_config.json.
            self._cast(CLIPVisionModelWithProjection(vision)).save_pretrained(encoder_dir)
        cross = unet_config["cross_attention_dim"]
        channels = list(unet_config["block_out_channels"])
        weights: dict[str, torch.Tensor] = {
            "image_proj.proj.weight": torch.randn(cross * 4, vision.projection_dim) * 0.02,
            "image_proj.proj.bias": torch.zeros(cross * 4),
            "image_proj.norm.weight": torch.ones(cross),
            "image_proj.norm.bias": torch.zeros(cross),
        }
        for index, hidden in enumerate(_cross_attention_widths(unet_config, channels)):
            key_id = 1 + 2 * index
            weights[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.02
            weights[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.02
        target = folder / (spec.subfolder or "") / (spec.weight_name or "ip-adapter.safetensors")
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.to(self.dtype).contiguous() for k, v in weights.items()}, str(target))


    def lora(self, folder: Path, spec: ModelSpec, unet_config: dict[str, Any]) -> None:
        """A LoRA shaped like LCM-LoRA (attention, feed-forward and resnet layers of the UNet),
        saved as diffusers saves one; its up-projections are random, so it changes the output."""
        from diffusers import StableDiffusionPipeline, UNet2DConditionModel
        from peft import LoraConfig
        from peft.utils import get_peft_model_state_dict

        config = dict(unet_config)
        config["in_channels"] = 4
        unet = UNet2DConditionModel.from_config(config)
        rank = 4 if self.tiny else 64
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_LORA_TARGETS))
        with torch.no_grad():
            for name, parameter in unet.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.02 if self.tiny else 0.002)
        layers = {k: v.to(self.dtype).contiguous() for k, v in get_peft_model_state_dict(unet).items()}
        StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers,
                                                  weight_name=spec.weight_name or "pytorch_lora_weights.safetensors")


# The layers latent-consistency/lcm-lora-sdv1-5 adapts (not conv_in: it fits the inpainting UNet).
LCM_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv",
                    "time_emb_proj"]


def _cross_attention_widths(unet_config: dict[str, Any], channels: list[int]) -> list[int]:
    """The width of each attention layer of the UNet, in the order diffusers enumerates them
    (IP-Adapter files key their weights 1, 3, 5, ... in that order, counting self-attention)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
    widths = []
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            widths.append(channels[-1])
        elif name.startswith("up_blocks"):
            widths.append(list(reversed(channels))[int(name[len("up_blocks.")])])
        else:
            widths.append(channels[int(name[len("down_blocks.")])])
    return widths


def build_models_dir(target: Path, registry: Registry | None = None, profile: str = "tiny",
                     dtype: torch.dtype = torch.float32, only: set[str] | None = None) -> Path:
    """Write every model the registry names (or those in `only`) under `target/<model id>`."""
    registry = registry or load_registry()
    builder = Builder(profile, dtype)
    torch.manual_seed(0)
    # Built in the target precision: a full-size SDXL UNet is 10 GB in float32, 5 in half.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        _build(target, registry, builder, only)
    finally:
        torch.set_default_dtype(default_dtype)
    return target


def _build(target: Path, registry: Registry, builder: Builder, only: set[str] | None) -> None:
    specs = [spec for key, spec in registry.models.items() if only is None or key in only]
    # Adapters, LoRAs and ControlNet Unions are shaped after the UNet they attach to: bases first;
    # and a model sharing another's parts after that one.
    specs.sort(key=lambda spec: (spec.kind in ("ip_adapter", "lora", "controlnet_union"), spec.shares is not None))
    channels = _unet_in_channels(registry)
    for spec in specs:
        folder = target / spec.id
        if spec.kind == "sd":
            builder.sd(folder, channels.get(spec.key, 4))
        elif spec.kind == "sdxl":
            builder.sdxl(folder, spec, channels.get(spec.key, 4))
        elif spec.kind == "sd_upscale":
            builder.sd_upscale(folder)
        elif spec.kind == "controlnet":
            builder._cast(builder.controlnet()).save_pretrained(folder)
        elif spec.kind == "controlnet_union":
            base = _controlnet_base(registry, spec.key)
            builder._cast(builder.controlnet_union(_unet_config(target, base))).save_pretrained(folder)
        elif spec.kind == "vae_tiny":
            builder._cast(builder.vae_tiny()).save_pretrained(folder)
        elif spec.kind == "segmentation":
            builder.segmentation(folder)
        elif spec.kind == "depth":
            builder.depth(folder)
        elif spec.kind == "matting":
            builder.matting(folder)
        elif spec.kind == "ip_adapter":
            builder.ip_adapter(folder, spec, _unet_config(target, _ip_adapter_base(registry, spec.key)))
        elif spec.kind == "lora":
            builder.lora(folder, spec, _unet_config(target, _lora_base(registry, spec.key)))
        elif spec.kind == "wan":
            from roomrender.engines.diffusers.random_wan import write_random_wan

            write_random_wan(folder, tiny=builder.tiny)
        elif spec.kind == "language":
            # Tiny in every profile: the chat model's size does not change the image pipelines'.
            from roomrender.engines.language.random_model import save_random_chat_model

            save_random_chat_model(folder)
        elif spec.kind in ("flux", "qwen_image"):
            _build_flow(folder, spec, builder)
        elif spec.kind == "shap_e":
            write_shap_e(folder, builder.tiny, builder.dtype)


def _build_flow(folder: Path, spec: ModelSpec, builder: Builder) -> None:
    """FLUX.1-schnell and Qwen-Image-Edit (random_flow_models.py)."""
    from roomrender.engines.diffusers import random_flow_models as flow

    if spec.kind == "flux":
        with tempfile.TemporaryDirectory() as scratch:
            tokenizer = builder._tokenizer(Path(scratch))
        encoder = builder._cast(builder.text_encoder(hidden=None if builder.tiny else 768, projection=False))
        flow.build_flux(folder, builder.tiny, encoder, tokenizer)
    else:
        flow.build_qwen_image(folder, builder.tiny)


# Inpainting pipelines that blend latents with a plain (4-channel) UNet.
BLENDING_INPAINT = frozenset({"StableDiffusionXLControlNetUnionInpaintPipeline"})


def _unet_in_channels(registry: Registry) -> dict[str, int]:
    """The UNet input channels of each base: 9 for an inpainting UNet, 8 for InstructPix2Pix,
    else 4."""
    channels: dict[str, int] = {}
    for spec in registry.all_specs():
        if spec.base and spec.kind == "inpaint" and spec.pipeline not in BLENDING_INPAINT:
            channels[spec.base] = 9
        elif spec.base and spec.kind == "instruct":
            channels[spec.base] = 8
    return channels


def _unet_config(target: Path, base: ModelSpec) -> dict[str, Any]:
    folder = target / base.id / "unet"
    config: dict[str, Any] = json.loads((folder / "config.json").read_text())
    return config


def _controlnet_base(registry: Registry, key: str) -> ModelSpec:
    for spec in registry.all_specs():
        if spec.base and any(c.model == key for c in spec.controlnets):
            base = registry.models[spec.base]
            return registry.models[base.shares] if base.shares else base
    raise ValueError(f"no task uses the ControlNet {key!r}")


def _lora_base(registry: Registry, lora_key: str) -> ModelSpec:
    for spec in registry.all_specs():
        if spec.fast and spec.fast.lora == lora_key and spec.base and spec.base in registry.models:
            return registry.models[spec.base]
    raise ValueError(f"no task uses the LoRA {lora_key!r}")


def _ip_adapter_base(registry: Registry, adapter_key: str) -> ModelSpec:
    for spec in registry.all_specs():
        if spec.ip_adapter == adapter_key and spec.base:
            return registry.models[spec.base]
    raise ValueError(f"no task uses the IP-Adapter {adapter_key!r}")
