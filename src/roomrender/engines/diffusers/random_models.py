"""A models folder of randomly initialised weights, laid out as the registry expects.

For tests (`tiny`: a few thousand parameters, runs on a CPU in seconds) and the GPU smoke bench
(`full`: SD 1.5-sized UNet, ControlNets, VAE and text encoder, so timings are realistic).
The images are noise; the point is that every pipeline runs through the real loading code.
Nothing is downloaded: the tokenizer is built from a vocab and merges file written here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

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


def _ade_labels() -> dict[int, str]:
    from roomrender.catalog import load_data_file

    return {entry["id"]: entry["name"] for entry in load_data_file(ADE_LABELS_FILE)["classes"]}


class Builder:
    def __init__(self, profile: str = "tiny", dtype: torch.dtype = torch.float32) -> None:
        if profile not in ("tiny", "full"):
            raise ValueError("profile must be 'tiny' or 'full'")
        self.tiny = profile == "tiny"
        self.dtype = dtype
        self.cross_attention_dim = 32 if self.tiny else 768

    def _cast(self, model: Any) -> Any:
        return model if self.dtype == torch.float32 else model.to(self.dtype)

    # -- Stable Diffusion parts ---------------------------------------------------------------

    def text_encoder(self, hidden: int | None = None) -> Any:
        from transformers import CLIPTextConfig, CLIPTextModel

        hidden = hidden or self.cross_attention_dim
        if self.tiny:
            config = CLIPTextConfig(hidden_size=hidden, intermediate_size=37, num_attention_heads=4,
                                    num_hidden_layers=2, vocab_size=1000, projection_dim=hidden,
                                    max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                    pad_token_id=1)
        else:
            config = CLIPTextConfig(hidden_size=hidden, intermediate_size=hidden * 4,
                                    num_attention_heads=hidden // 64, num_hidden_layers=12,
                                    vocab_size=49408, projection_dim=hidden, hidden_act="quick_gelu",
                                    max_position_embeddings=77)
        return CLIPTextModel(config)

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

    def sd(self, folder: Path, inpainting: bool) -> None:
        from diffusers import StableDiffusionPipeline

        text_encoder = self.text_encoder()
        pipeline = StableDiffusionPipeline(
            vae=self.vae(), text_encoder=text_encoder, tokenizer=self._tokenizer(folder),
            unet=self.unet(9 if inpainting else 4), scheduler=self.scheduler(),
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
            text_encoder = self.text_encoder(1024)
        vae = self.vae(blocks=3)
        vae.register_to_config(scaling_factor=0.08333)
        pipeline = StableDiffusionUpscalePipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=self._tokenizer(folder), unet=unet,
            low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"),
            max_noise_level=350)
        self._cast(pipeline).save_pretrained(folder)

    @staticmethod
    def _tokenizer(folder: Path) -> Any:
        from transformers import CLIPTokenizer

        with tempfile.TemporaryDirectory() as scratch:
            write_tokenizer(Path(scratch), vocab_size=1000)
            return CLIPTokenizer.from_pretrained(scratch)

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
    specs = [spec for key, spec in registry.models.items() if only is None or key in only]
    # IP-Adapters and LoRAs are shaped after the UNet they attach to: build base models first.
    specs.sort(key=lambda spec: spec.kind in ("ip_adapter", "lora"))
    inpainting_bases = {t.base for t in registry.tasks.values() if t.kind == "inpaint"}
    for spec in specs:
        folder = target / spec.id
        if spec.kind == "sd":
            builder.sd(folder, inpainting=spec.key in inpainting_bases)
        elif spec.kind == "sd_upscale":
            builder.sd_upscale(folder)
        elif spec.kind == "controlnet":
            builder._cast(builder.controlnet()).save_pretrained(folder)
        elif spec.kind == "segmentation":
            builder.segmentation(folder)
        elif spec.kind == "depth":
            builder.depth(folder)
        elif spec.kind == "matting":
            builder.matting(folder)
        elif spec.kind == "ip_adapter":
            base = _ip_adapter_base(registry, spec.key)
            unet_config = json.loads((target / base.id / "unet" / "config.json").read_text())
            builder.ip_adapter(folder, spec, unet_config)
        elif spec.kind == "lora":
            base = _lora_base(registry, spec.key)
            unet_config = json.loads((target / base.id / "unet" / "config.json").read_text())
            builder.lora(folder, spec, unet_config)
    return target


def _lora_base(registry: Registry, lora_key: str) -> ModelSpec:
    for spec in registry.tasks.values():
        if spec.fast and spec.fast.lora == lora_key and spec.base and spec.base in registry.models:
            return registry.models[spec.base]
    raise ValueError(f"no task uses the LoRA {lora_key!r}")


def _ip_adapter_base(registry: Registry, adapter_key: str) -> ModelSpec:
    for spec in registry.tasks.values():
        if spec.ip_adapter == adapter_key and spec.base:
            return registry.models[spec.base]
    raise ValueError(f"no task uses the IP-Adapter {adapter_key!r}")
