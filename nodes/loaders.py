"""Loader nodes of the LM and the codec, and the one way every loader node (the listening ones
too) turns a model folder into a model in a patcher (``load_model``): resolve (or download) the
folder, pick the dtype, build on the offload device, wrap. How each kind is placed is in memory.py
(the LM in a plain ModelPatcher, the codec in ComfyUI's CoreModelPatcher, the listening models
whole in a plain ModelPatcher).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from comfy_api.latest import io

from ..heartmula_core.checkpoints.sources import CHOICES, DEFAULT, SOURCE_ENV
from ..heartmula_core.codec import load_codec
from ..heartmula_core.lm.load import load_lm
from ..heartmula_core.settings import WEIGHT_DTYPE_CHOICES
from . import fp8_ops, memory, model_folders
from .base import HeartMuLaNode, advanced
from .types import CodecSocket, HeartCodecModel, HeartMuLaLM, ListeningModel, LMSocket

log = logging.getLogger(__name__)

DOWNLOAD_TOOLTIP = (
    "Fetch the folder (from the download source below) into the first HeartMuLa model folder when it is not "
    "there yet (several GB; an LM also needs the shared tokenizer.json and gen_config.json, fetched too). "
    "Off: a missing folder stops with the exact download commands."
)
SOURCE_TOOLTIP = (
    f"Where download_if_missing fetches from. hf: the Hugging Face Hub. modelscope: ModelScope, the same models "
    f"where the Hub is out of reach (needs pip install modelscope). default: the {SOURCE_ENV} environment "
    "variable (hf or modelscope), else hf."
)


def loader_inputs(kind: str, folder_input: str, folder_tooltip: str, dtype_default: str, dtype_tooltip: str,
                  download_tooltip: str = DOWNLOAD_TOOLTIP, extra: tuple = ()) -> list:
    """The folder dropdown (installed folders, then official names), the dtype, 'download if missing',
    the loader's ``extra`` inputs, and last the download source (optional: saved workflows and API
    prompts from before it existed keep their order and run with the default)."""
    return [io.Combo.Input(folder_input, options=model_folders.choices(kind), tooltip=folder_tooltip),
            io.Combo.Input("dtype", options=list(memory.PLACEMENTS[kind].dtypes), default=dtype_default,
                           tooltip=dtype_tooltip),
            io.Boolean.Input("download_if_missing", default=False, tooltip=download_tooltip),
            *extra,
            io.Combo.Input("download_source", options=[DEFAULT, *CHOICES], default=DEFAULT, optional=True, **advanced(),
                           tooltip=SOURCE_TOOLTIP)]


def load_model(kind: str, name: str, dtype: str, download: bool, build: Callable, weight_dtype: str = "default",
               source: str = DEFAULT):
    """Resolve (or download from ``source``) folder ``name`` of ``kind`` and pick its dtype, then
    ``build(folder, dtype, load_device, offload_device)``: the value the loader's socket carries
    (``weight_dtype``: how ``build`` holds the weights, for the log)."""
    folder = model_folders.resolve(kind, name, download, source)
    load_device, offload_device = memory.PLACEMENTS[kind].devices()
    torch_dtype = memory.loader_dtype(kind, dtype, load_device)
    held = build(folder, torch_dtype, load_device, offload_device)
    log.info("HeartMuLa: loaded %s %s as %s, weights %s (%.3f GB)", kind, folder, torch_dtype, weight_dtype,
             held.patcher.size / 1e9)
    return held


def listening(loader: Callable) -> Callable:
    """How a ``transformers`` model is built: on the CPU, moved to the offload device inside a
    HeldModel, in a plain ModelPatcher that always loads it whole."""
    def build(folder, dtype, load_device, offload_device) -> ListeningModel:
        loaded = loader(folder, dtype=dtype)
        patcher = memory.wrap(memory.HeldModel(loaded.model.to(offload_device)), load_device, offload_device)
        return ListeningModel(patcher=patcher, folder=folder, dtype=dtype, processor=loaded.processor)
    return build


def _lm(weight_dtype: str) -> Callable:
    """comfy.ops layers (fp8 ones for an fp8 ``weight_dtype``), in a plain ModelPatcher (a full load
    lets the frame step be a CUDA graph). The choice is checked before any download (the server does
    not check dropdown values of V3 nodes)."""
    fp8 = fp8_ops.fp8_choice(weight_dtype)

    def build(folder, dtype, load_device, offload_device) -> HeartMuLaLM:
        storage = fp8_ops.weight_storage(fp8, dtype)
        lm = load_lm(folder, device=offload_device, dtype=dtype, storage=storage)
        return HeartMuLaLM(patcher=memory.wrap(lm.model, load_device, offload_device), folder=folder, dtype=dtype,
                           tokenizer=lm.tokenizer, gen_config=lm.gen_config, config=lm.config)
    return build


def _codec(weight_dtype: str) -> Callable:
    """comfy.ops layers (the transformer's Linears in fp8 for an fp8 ``weight_dtype``; float32 compute
    outside it), in ComfyUI's CoreModelPatcher (paged by DynamicVRAM where the host has it)."""
    fp8 = fp8_ops.fp8_choice(weight_dtype)

    def build(folder, dtype, load_device, offload_device) -> HeartCodecModel:
        storage = fp8_ops.weight_storage(fp8, torch.float32)
        model = load_codec(folder, device=offload_device, dtype=dtype, storage=storage)
        patcher = memory.wrap_core(model, load_device, offload_device)
        return HeartCodecModel(patcher=patcher, folder=folder, dtype=dtype)
    return build


def weight_dtype_input(what: str) -> io.Combo.Input:
    """The LM's and the codec's input after download_if_missing (so saved workflows keep their
    order); optional, so API prompts written before it existed still run (as "default")."""
    return io.Combo.Input(
        "weight_dtype", options=list(WEIGHT_DTYPE_CHOICES), default="default", optional=True, **advanced(),
        tooltip=f"How {what} held in memory. default: in the dtype above. fp8_e4m3fn / fp8_e5m2: stored "
                "in fp8 (one byte per weight, about half of bf16) and cast to the dtype above layer by layer, "
                "so smaller GPUs fit; a little less accurate (e4m3fn more precise, e5m2 more range).")


class LoadHeartMuLaLM(HeartMuLaNode):
    """Loads a HeartMuLa language model (the part that writes the song as audio tokens)."""

    @classmethod
    def define_schema(cls):
        return cls.declare("HeartMuLaLMLoader", "Load HeartMuLa LM", inputs=loader_inputs(
                "lm", "model", "An LM folder under models/HeartMuLa (or another registered HeartMuLa folder). "
                "Official names not downloaded yet are listed too.",
                "auto", "Weight and compute precision. auto = bf16 where the GPU supports it, else fp32. fp16 may "
                "overflow; fp32 doubles memory.", extra=(weight_dtype_input("the Linear and Embedding weights are"),)),
            outputs=[LMSocket.Output(display_name="lm", tooltip="The LM, its tokenizer and generation config.")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool, weight_dtype: str = "default",
                download_source: str = DEFAULT) -> io.NodeOutput:
        return io.NodeOutput(load_model("lm", model, dtype, download_if_missing, _lm(weight_dtype), weight_dtype,
                                        download_source))


class LoadHeartCodec(HeartMuLaNode):
    """Loads HeartCodec, which turns HeartMuLa's audio tokens into a 48 kHz stereo waveform."""

    @classmethod
    def define_schema(cls):
        return cls.declare("HeartMuLaCodecLoader", "Load HeartCodec", inputs=loader_inputs(
                "codec", "codec", "A HeartCodec folder under models/HeartMuLa. Use HeartCodec-oss-20260123 with the "
                "20260123 and later LMs.",
                "fp32", "Precision of the codec's transformer (the rest stays fp32). The authors report audible loss "
                "below fp32.", extra=(weight_dtype_input("the transformer's Linear weights are"),)),
            outputs=[CodecSocket.Output(display_name="codec", tooltip="The codec.")],
        )

    @classmethod
    def execute(cls, codec: str, dtype: str, download_if_missing: bool, weight_dtype: str = "default",
                download_source: str = DEFAULT) -> io.NodeOutput:
        return io.NodeOutput(load_model("codec", codec, dtype, download_if_missing, _codec(weight_dtype), weight_dtype,
                                        download_source))


NODES = [LoadHeartMuLaLM, LoadHeartCodec]
